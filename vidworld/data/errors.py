"""The error type of the episode-data layer."""


class DatasetError(ValueError):
    """A folder is not a usable dataset, or an episode in it is invalid.

    Messages are one line that names the file and says what was expected."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (decord and zipfile errors can span lines)."""
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__
