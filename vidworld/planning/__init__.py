"""Planning over the world-model protocol (never over an env object).

cem.CEMPlanner: CEM / MPPI model-predictive control, uncertainty-aware.
mcts.search: batched MuZero/mctx tree search; mcts_planner.mcts_policy / MCTSPlanner adapt it to a world model.
agent.MPCAgent: replans every step in a real env from the real recent frames, with either planner.
"""

from vidworld.planning.agent import MPCAgent
from vidworld.planning.cem import CEMConfig, CEMPlanner, PlanResult
from vidworld.planning.mcts import RecurrentOutput, RootOutput, SearchOutput, Tree, search
from vidworld.planning.mcts_planner import MCTSPlanner, mcts_policy

__all__ = [
    "CEMConfig",
    "CEMPlanner",
    "MCTSPlanner",
    "MPCAgent",
    "PlanResult",
    "RecurrentOutput",
    "RootOutput",
    "SearchOutput",
    "Tree",
    "mcts_policy",
    "search",
]
