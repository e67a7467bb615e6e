"""Errors that reach the user as one clear message (the CLI prints them without a traceback)."""

from __future__ import annotations


class WeaklocError(Exception):
    """Base class: a problem the user can fix; the message says what and how."""


class InputError(WeaklocError):
    """Bad input data: an image, a mask, a folder or a manifest that cannot be used as it is."""

    def __init__(self, path: object, problem: str, fix: str = "") -> None:
        self.path = str(path)
        message = f"{self.path}: {problem}"
        if fix:
            message += f"\n  fix: {fix}"
        super().__init__(message)


class ImageTooLargeError(InputError):
    """An image whose header claims more pixels than the limit (a decompression bomb, or a huge scan)."""


class ConfigError(WeaklocError):
    """An experiment file, CLI option or checkpoint that does not describe a valid run."""
