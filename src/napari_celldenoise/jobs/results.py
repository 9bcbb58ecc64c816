"""What each job's final :class:`~.events.Done` carries.

Every job ends with ``Done(result)``; the result's type is fixed per job, so a caller (a dock,
the CLI, a remote client reading events as JSON) reads named fields instead of knowing a
tuple's order by convention. All of them pickle (child process queue) and are sent as JSON by
:mod:`.wire`.

========================================  ==========================================
job                                       ``Done.result`` (``None`` when stopped early)
========================================  ==========================================
``deep.api.train``                        ``deep.model.ModelInfo`` (the folder's record)
``deep.api.predict``                      ``numpy.ndarray``, or ``deep.api.StoredResult``
                                          with ``out=`` (a ``.npy`` to open lazily)
``deep.api.predict_file``                 ``deep.api.StoredResult``
``deep.export.export_bioimageio``         ``str`` (the package's path)
``deep.export.check_package``             :class:`PackageCheck`
``deep.export.export_and_check``          :class:`ExportResult`
``classical.apply.denoise_job``           ``numpy.ndarray`` (the filtered image)
``classical.autotune.autotune_job``       ``classical.autotune.TuneResult``
``spots.pipeline.find_spots``             ``pandas.DataFrame`` (the spot table)
``spots.centroid.train_mlp`` and
``train_centroid``                        ``spots.centroid.CentroidModel``
========================================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PackageCheck:
    """bioimage.io's test of a model package: whether it ``passed``, and its ``report``."""

    passed: bool
    report: str


@dataclass(frozen=True)
class ExportResult:
    """A published model package: its ``path`` and the validation ``report`` behind it."""

    path: str
    report: str

    @property
    def summary(self) -> str:
        """The report's first line (``"bioimage.io validation: passed"``)."""
        return self.report.splitlines()[0] if self.report else ""


__all__ = ["ExportResult", "PackageCheck"]
