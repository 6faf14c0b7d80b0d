"""The error type of the episode-data layer."""


class DatasetError(ValueError):
    """A folder is not a usable dataset, or an episode in it is invalid (message names the file)."""
