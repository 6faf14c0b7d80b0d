"""vidworld: world models and planning in generated video."""

__version__ = "0.1.0"

# Register the gymnasium ids (vidworld/WorldModel-v0) on import; this imports gymnasium, not torch.
import vidworld.envs  # noqa: F401
