"""MuZero (Schrittwieser et al. 2020) as a world-model kind: networks, h-transform supports, the protocol model.
Its learner and self-play live in vidworld/rl/muzero_*.py."""
