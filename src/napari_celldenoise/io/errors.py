"""Errors raised by the readers and writers."""

from __future__ import annotations


class ImageReadError(ValueError):
    """A file the plugin handles could not be read; the message names the file and the problem."""

    def __init__(self, path: str, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class ImageWriteError(ValueError):
    """An image could not be written; nothing was left at the target path."""
