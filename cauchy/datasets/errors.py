"""The one error type for bad data on disk, so callers can report it as bad input (exit code 2)."""


class DatasetError(ValueError):
    """A dataset file is missing, undecodable or malformed; the message names the file."""
