"""vidworld: world models and planning in generated video."""

__version__ = "0.1.0"
