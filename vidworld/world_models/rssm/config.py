"""The RSSM world model's config section (`rssm:` in an experiment YAML) and the one mapping from config
to networks, used by training, the benchmark and tests alike.

    model: {kind: rssm, context_length: 8}
    rssm:
      preset: compact            # network sizes: compact (small envs) | atari100k (dreamerv3-torch's size)
      deter: 0                   # any size field > 0 overrides the preset's value
      train_steps: 3000
      batch_size: 16             # sequences per batch ...
      seq_len: 32                # ... of this many consecutive frames (episode starts reset the state)

The generic `train:` section still holds seed, warmup_steps, grad_clip, weight_decay, checkpoint_every,
log_every, num_threads, mixed_precision.
"""

from __future__ import annotations

from dataclasses import dataclass

from vidworld.config import check_field

# Network sizes. "atari100k" is dreamerv3-torch's default world model, which its atari100k config uses
# unchanged (CNN depth 32 with kernel 4 down to 4x4, GRU 512, 32 x 32 categoricals, MLP heads 2 x 512):
# 15.7M parameters with 64x64 frames and 6 actions. "compact" is a quarter of its widths for small envs
# like CartPole (3.1M with 64x64 frames).
PRESETS: dict[str, dict[str, int]] = {
    "compact": {"depth": 16, "deter": 256, "hidden": 256, "stoch": 16, "classes": 16, "units": 256,
                "head_layers": 2},
    "atari100k": {"depth": 32, "deter": 512, "hidden": 512, "stoch": 32, "classes": 32, "units": 512,
                  "head_layers": 2},
}
SIZE_FIELDS = ("depth", "deter", "hidden", "stoch", "classes", "units", "head_layers")


@dataclass
class RSSMConfig:
    # --- networks (0 = the preset's value) ---
    preset: str = "compact"
    depth: int = 0  # channels of the first CNN stage (doubling per stage)
    deter: int = 0  # GRU state size D
    hidden: int = 0  # width of the sequence model's input and of the prior/posterior layers
    stoch: int = 0  # S categoricals ...
    classes: int = 0  # ... of C classes each
    units: int = 0  # width of the reward / continue MLPs
    head_layers: int = -1  # hidden layers of the reward / continue MLPs (-1 = the preset's)
    minres: int = 4  # the CNNs' smallest feature map side
    unimix: float = 0.01  # uniform share of the categoricals (DreamerV3: 1%)
    # > 0: a value head learning the data policy's return discounted by this (for planners; 0 = none)
    value_discount: float = 0.0
    # --- loss (DreamerV3 eq. 5) ---
    free_nats: float = 1.0
    dyn_scale: float = 0.5
    rep_scale: float = 0.1
    # --- training ---
    train_steps: int = 3000
    batch_size: int = 16
    seq_len: int = 64
    lr: float = 1e-4  # DreamerV3 / dreamerv3-torch world-model learning rate

    def __post_init__(self) -> None:
        check_field(self, "preset", one_of=tuple(PRESETS))
        for name in SIZE_FIELDS:
            if name != "head_layers":
                check_field(self, name, ge=0, note="0 = the preset's value")
        check_field(self, "head_layers", ge=-1, note="-1 = the preset's value")
        check_field(self, "minres", ge=1)
        check_field(self, "unimix", ge=0, lt=1)
        check_field(self, "value_discount", ge=0, lt=1, note="0 = no value head")
        check_field(self, "free_nats", ge=0)
        for name in ("dyn_scale", "rep_scale"):
            check_field(self, name, ge=0)
        for name in ("train_steps", "batch_size", "seq_len"):
            check_field(self, name, ge=1)
        check_field(self, "lr", gt=0)

    def sizes(self) -> dict[str, int]:
        """The preset's network sizes with this config's overrides applied."""
        out = dict(PRESETS[self.preset])
        for name in SIZE_FIELDS:
            value = getattr(self, name)
            if value > 0 or (name == "head_layers" and value >= 0):
                out[name] = value
        return out

    def build(self, frame_size: int, num_actions: int):
        """The untrained RSSMNetworks for frames of side `frame_size` and `num_actions` discrete actions."""
        from vidworld.world_models.rssm.networks import RSSMNetworks

        return RSSMNetworks(frame_size=frame_size, num_actions=num_actions, minres=self.minres,
                            unimix=self.unimix, value_discount=self.value_discount, **self.sizes())
