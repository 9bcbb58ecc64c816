"""The optional parts of the install: which module belongs to which extra, and one message.

The base install (``pip install napari-celldenoise``) reads, filters and finds spots. Three
extras add the rest; this module is the only place that knows which modules they bring:

``deep``    TensorFlow, n2v and bioimage.io: training, denoising with a network, the centroid
            network, BioImage Model Zoo export.
``cloud``   gcsfs and dask.distributed: ``gs://`` paths, dask clusters.
``napari``  napari and its Qt stack: the docks.

:func:`require` checks an extra before work starts (without importing it) and raises
:class:`MissingExtra`, whose message is one line naming what to install; the command line
turns it into exit status 2 and the docks into a label.
"""

from __future__ import annotations

import importlib.util

EXTRAS: dict[str, tuple[str, ...]] = {
    "deep": ("tensorflow", "tf_keras", "n2v", "bioimageio.core", "bioimageio.spec"),
    "cloud": ("gcsfs", "distributed"),
    "napari": ("napari", "magicgui", "qtpy", "superqt", "matplotlib"),
}
"""Extra -> the top-level modules it installs (as imported)."""

PURPOSE: dict[str, str] = {
    "deep": "training and denoising with networks",
    "cloud": "gs:// paths and dask clusters",
    "napari": "the napari docks",
}


class MissingExtra(ImportError):
    """An optional part of the install is missing; the message says what to install.

    An ``ImportError``, so that code which already treats a failed import as "not available"
    keeps working.
    """

    def __init__(self, extra: str, module: str, purpose: str | None = None):
        self.extra, self.module = extra, module
        what = purpose or PURPOSE[extra]
        super().__init__(
            f'{what} needs the "{extra}" extra ({module} is not installed): '
            f'pip install "napari-celldenoise[{extra}]"',
            name=module,
        )


def missing_module(extra: str, modules: tuple[str, ...] | None = None) -> str | None:
    """The first module of ``extra`` (or of ``modules``) that cannot be imported, or None."""
    for module in modules or EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or a broken install
            found = False
        if not found:
            return module
    return None


def require(extra: str, purpose: str | None = None, *, modules: tuple[str, ...] | None = None):
    """Raise :class:`MissingExtra` unless every module of ``extra`` (or ``modules``, a part of
    it) can be imported; nothing is imported."""
    module = missing_module(extra, modules)
    if module is not None:
        raise MissingExtra(extra, module, purpose)


def extra_of(module: str | None) -> str | None:
    """The extra that installs ``module`` (or its top-level package), None for any other."""
    if not module:
        return None
    for extra, modules in EXTRAS.items():
        for known in modules:
            if module == known or module.startswith(known + ".") or known.startswith(module + "."):
                return extra
    return None


def as_missing_extra(exc: ImportError) -> MissingExtra | None:
    """``exc`` (a failed import) as a :class:`MissingExtra` when the module is an extra's."""
    if isinstance(exc, MissingExtra):
        return exc
    extra = extra_of(getattr(exc, "name", None))
    return MissingExtra(extra, str(exc.name)) if extra else None


__all__ = ["EXTRAS", "MissingExtra", "as_missing_extra", "extra_of", "missing_module", "require"]
