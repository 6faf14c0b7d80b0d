"""Agents that learn to act from a world model (`vidworld.protocol`), reading only `model.features(state)`.

actor_critic.ActorCritic: DreamerV3-style actor-critic trained in imagination (update / act / state_dict).
imagination.imagine -> Trajectory: batched imagined rollouts of a policy in any world model;
    imagination.DifferentiableDynamics: the capability dynamics backprop with discrete actions needs.
returns.lambda_returns, returns.PercentileNormalizer: the return targets and the advantage scale.
twohot.TwoHot, symlog, symexp: the critic's symlog two-hot regression.
"""

from vidworld.agents.actor_critic import ActorCritic, ActorCriticConfig
from vidworld.agents.imagination import DifferentiableDynamics, Trajectory, imagine
from vidworld.agents.networks import Actor, Critic
from vidworld.agents.returns import PercentileNormalizer, lambda_returns
from vidworld.agents.twohot import TwoHot, symexp, symlog

__all__ = [
    "Actor",
    "ActorCritic",
    "ActorCriticConfig",
    "Critic",
    "DifferentiableDynamics",
    "PercentileNormalizer",
    "Trajectory",
    "TwoHot",
    "imagine",
    "lambda_returns",
    "symexp",
    "symlog",
]
