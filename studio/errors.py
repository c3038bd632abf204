"""Errors an artist can read. ``kind`` travels with a failed job so the UI can react to it."""

from __future__ import annotations


class StudioError(Exception):
    """Base class: the message is one sentence meant for the artist, never a traceback."""

    kind = "error"


class BadInputError(StudioError):
    """A file or an argument the tool cannot use (missing, corrupt, wrong size, too large)."""

    kind = "bad_input"


class MissingModelError(StudioError):
    """A model that is not known or whose weight files are not on this machine."""

    kind = "missing_model"


class BadWeightsError(StudioError):
    """A weight file that is unsafe, corrupt, or not an architecture Studio knows."""

    kind = "bad_weights"


class OutOfMemoryError(StudioError):
    """The job cannot fit in memory even after splitting it into the smallest tiles."""

    kind = "oom"


class ModelOutputError(StudioError):
    """A model produced values that are not numbers (NaN or infinity) instead of an image."""

    kind = "bad_output"


class Cancelled(Exception):
    """Raised inside a task when its cancel token is set (the runner then sends the
    :class:`~studio.engine.messages.JobCancelled` message)."""


def os_error_message(exc: OSError, path: object = None) -> str:
    """One readable sentence for an ``OSError``: ``path: reason`` without the errno prefix.

    ``path`` names the file when the error itself does not (a failed ``write`` carries none).
    """
    reason = exc.strerror or str(exc) or type(exc).__name__
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    if not names and path is not None:
        names = [str(path)]
    return f"{' -> '.join(names)}: {reason}" if names else reason
