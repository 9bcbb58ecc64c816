"""Errors of the EM tools (importable without numpy work, for the command line's error list)."""

from __future__ import annotations


class LatticeNotFound(ValueError):
    """The image shows no clear periodic lattice (vacuum, amorphous, too noisy)."""
