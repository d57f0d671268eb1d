"""Errors a user can cause. Each message says what is wrong and what to do about it."""

from __future__ import annotations


class ArtstyleError(Exception):
    """Base class: the CLI prints the message on one line and exits non-zero."""

    exit_code = 1


class UsageError(ArtstyleError):
    """A wrong option value, path or name."""

    exit_code = 2


class ImageError(ArtstyleError):
    """An image that cannot be read or is not usable."""


class DataError(ArtstyleError):
    """A folder of paintings or photos that cannot be trained on."""


class ModelError(ArtstyleError):
    """A model folder or checkpoint that is missing, incomplete or incompatible."""


class TrainingError(ArtstyleError):
    """Training cannot go on (for example a NaN loss); the last good checkpoint is kept."""


class TrainingInterrupted(ArtstyleError):
    """Ctrl-C (exit code 130) or SIGTERM (143) during training; a checkpoint was saved before stopping."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code
