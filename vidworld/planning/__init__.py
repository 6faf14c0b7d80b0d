"""Planning over the world-model protocol (never over an env object).

cem.CEMPlanner (CEM / MPPI model-predictive control, uncertainty-aware), mcts.search (batched MuZero/mctx
tree search) with mcts.mcts_policy (its adapter to a world model), agent.MPCAgent (replanning in a real env).
"""

from vidworld.planning.agent import MPCAgent
from vidworld.planning.cem import CEMConfig, CEMPlanner, PlanResult
from vidworld.planning.mcts import RecurrentOutput, RootOutput, SearchOutput, Tree, mcts_policy, search

__all__ = [
    "CEMConfig",
    "CEMPlanner",
    "MPCAgent",
    "PlanResult",
    "RecurrentOutput",
    "RootOutput",
    "SearchOutput",
    "Tree",
    "mcts_policy",
    "search",
]
