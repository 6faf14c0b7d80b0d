"""The DreamerV3 RSSM world model (kind "rssm"), a baseline beside the latent diffusion model behind the
same protocol: `RSSMWorldModel` (model.py) over `RSSMNetworks` (networks.py: CNN encoder/decoder, LayerNorm
GRU, categorical prior/posterior, two-hot reward and continue heads), its losses (losses.py), sequence
batches (sequences.py), config and size presets (config.py), the trainer (train.py: `train_rssm`) and the
online learner of `vidworld dream` (online.py: `RSSMOnline`).
"""

from vidworld.world_models.rssm.config import PRESETS, RSSMConfig

__all__ = ["PRESETS", "RSSMConfig"]
