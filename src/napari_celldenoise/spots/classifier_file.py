"""Spot classifier files that run no code when they are opened.

A classifier is saved with ``skops.io`` (a zip of a JSON schema and ``.npy`` arrays). Loading
checks, before anything is built:

- that the file is a skops zip at all: a pickle (joblib's ``.joblib``, ``.pkl``) can run any
  code while it is read, so it is refused with :class:`UntrustedPickle` unless the caller
  trusts it (the CLI's ``--trust``, the Spots dock's confirmation);
- that every type the schema names is in :data:`ALLOWED_TYPES`, the types a
  ``HistGradientBoostingClassifier`` of this project is made of (an explicit allow-list, not
  skops' defaults);
- after loading, that every tree's child and feature indices are in range and point forward,
  because scikit-learn's tree predictor indexes its node array without bounds checks (a
  crafted file could otherwise read memory out of bounds or loop forever);
- that the model has as many features as the file says it uses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path

logger = logging.getLogger(__name__)

SUFFIX = ".skops"
MODEL_FORMAT = "napari-celldenoise spot classifier"
MODEL_VERSION = 2  # 1: joblib pickle (trusted only), 2: skops
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")

_BUILTINS = ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType")
_NUMPY = (
    "ndarray",
    "dtype",
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
)
_HGB = "sklearn.ensemble._hist_gradient_boosting."
ALLOWED_TYPES = frozenset(
    [f"builtins.{name}" for name in _BUILTINS]
    + [f"numpy.{name}" for name in _NUMPY]
    + [
        "numpy.random._generator.Generator",
        "numpy.random._pcg64.PCG64",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn.preprocessing._label.LabelEncoder",
        _HGB + "binning._BinMapper",
        _HGB + "gradient_boosting.HistGradientBoostingClassifier",
        _HGB + "predictor.TreePredictor",
    ]
)
"""Every type a classifier file may name (``module.Class``)."""

_PICKLE_MAGIC = (
    b"\x80",  # pickle protocol 2+
    b"\x78",  # zlib (joblib compress=True)
    b"\x1f\x8b",  # gzip
    b"BZh",  # bz2
    b"\xfd7zXZ",  # xz
    b"\x04\x22\x4d\x18",  # lz4
)

_trusted_digests: set[str] = set()


class UntrustedPickle(ValueError):
    """A pickle classifier file that the user has not said they trust."""


def trust_pickle(path: str | os.PathLike) -> None:
    """Allow the pickle at ``path``, as it is now, to be loaded in this process.

    The file's SHA-256 is recorded, so a file changed after it was trusted is refused again.
    Used by the CLI's ``--trust``, whose job loads the classifier later by its path.
    """
    _trusted_digests.add(_sha256(Path(path)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_classifier(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (features, box, use_image, model, info) as a skops file, atomically."""
    import skops.io as sio

    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ValueError(
            f"{path.name}: classifiers are saved as {SUFFIX} files (a {path.suffix} pickle "
            "runs code when opened); choose a .skops name"
        )
    data = {"format": MODEL_FORMAT, "version": MODEL_VERSION, **payload}
    with atomic_path(path, overwrite=True) as tmp:
        sio.dump(data, tmp)
    return path


def is_pickle(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a pickle/joblib file (by its first bytes or its suffix)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(8)
    return head.startswith(_PICKLE_MAGIC) or path.suffix.lower() in PICKLE_SUFFIXES


def load_classifier(path: str | os.PathLike, *, trust: bool = False) -> dict[str, Any]:
    """The checked payload of a classifier file (see the module's docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such classifier file")
    try:
        if zipfile.is_zipfile(path):
            payload = _load_skops(path)
        elif is_pickle(path):
            if not (trust or _sha256(path) in _trusted_digests):
                raise UntrustedPickle(
                    f"{path}: refused, a pickle (.joblib) classifier can run any code when it "
                    "is opened; if you trust its source, load it with --trust (or confirm in "
                    f"the Spots dock) and save it again as {SUFFIX}"
                )
            payload = _load_pickle(path)
        else:
            raise ValueError(f"{path}: not a spot classifier file")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the classifier ({exc.strerror or exc})") from None
    return _checked(path, payload)


def _load_pickle(path: Path) -> Any:
    import joblib

    logger.warning("loading a trusted pickle classifier: %s", path)
    try:
        return joblib.load(path)
    except Exception as exc:  # a damaged pickle raises anything
        raise ValueError(f"{path}: not a spot classifier ({type(exc).__name__})") from None


def _schema_types(path: Path) -> set[str]:
    """Every ``module.Class`` the skops schema names (raises ValueError when unreadable)."""
    try:
        with zipfile.ZipFile(path) as z:
            schema = json.loads(z.read("schema.json"))
    except (KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path}: not a spot classifier file ({type(exc).__name__})") from None
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node and "__module__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _load_skops(path: Path) -> Any:
    import skops.io as sio

    found = _schema_types(path)
    foreign = sorted(found - ALLOWED_TYPES)
    if foreign:
        raise ValueError(
            f"{path}: refused, the file holds types a spot classifier does not use: "
            + ", ".join(foreign[:5])
            + (" ..." if len(foreign) > 5 else "")
        )
    try:
        untrusted = sio.get_untrusted_types(file=path)
        if set(untrusted) - ALLOWED_TYPES:  # the schema walk above missed a type
            raise ValueError(f"{path}: refused, unexpected types {sorted(untrusted)}")
        return sio.load(path, trusted=sorted(untrusted))
    except ValueError:
        raise
    except Exception as exc:  # a damaged archive raises anything
        raise ValueError(f"{path}: not a readable spot classifier ({type(exc).__name__})") from None


def _checked(path: Path, payload: Any) -> dict[str, Any]:
    """``payload`` when it is a complete, consistent classifier; ValueError otherwise."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not a napari-celldenoise spot classifier")
    try:
        version = int(payload.get("version", 0))
    except (TypeError, ValueError):
        version = 0
    if version > MODEL_VERSION:
        raise ValueError(f"{path}: made by a newer napari-celldenoise; update it")
    features, box, model = payload.get("features"), payload.get("box"), payload.get("model")
    if not (isinstance(features, list) and all(isinstance(f, str) for f in features)):
        raise ValueError(f"{path}: damaged classifier (its feature list)")
    if not (isinstance(box, int) and 1 <= box <= 99 and isinstance(payload.get("use_image"), bool)):
        raise ValueError(f"{path}: damaged classifier (its box or use_image)")
    if not isinstance(model, HistGradientBoostingClassifier):
        raise ValueError(f"{path}: the classifier is a {type(model).__name__}, not the one saved")
    n_features = len(features) + (box * box if payload["use_image"] else 0)
    if getattr(model, "n_features_in_", None) != n_features:
        raise ValueError(
            f"{path}: damaged classifier (the model takes {getattr(model, 'n_features_in_', '?')}"
            f" features, the file lists {n_features})"
        )
    problem = _tree_problem(model, n_features)
    if problem:
        raise ValueError(f"{path}: damaged classifier ({problem})")
    return payload


def _tree_problem(model: Any, n_features: int) -> str:
    """What is wrong with the trees' node arrays, or ``""`` (all indices in range)."""
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    predictors = getattr(model, "_predictors", None)
    per = getattr(model, "n_trees_per_iteration_", None)
    if not isinstance(predictors, list) or per != 1:
        return "no trees"
    for iteration, trees in enumerate(predictors):
        if not isinstance(trees, list) or len(trees) != per:
            return f"iteration {iteration} has no tree"
        nodes = getattr(trees[0], "nodes", None)
        if not isinstance(nodes, np.ndarray) or nodes.dtype != PREDICTOR_RECORD_DTYPE:
            return f"tree {iteration}: not a node array"
        if nodes.ndim != 1 or len(nodes) == 0:
            return f"tree {iteration}: no nodes"
        split = ~nodes["is_leaf"].astype(bool)
        index = np.arange(len(nodes))
        for field in ("left", "right"):
            child = nodes[field][split].astype(np.int64)
            if ((child <= index[split]) | (child >= len(nodes))).any():
                return f"tree {iteration}: a child index out of range"
        feature = nodes["feature_idx"][split].astype(np.int64)
        if ((feature < 0) | (feature >= n_features)).any():
            return f"tree {iteration}: a feature index out of range"
        if nodes["is_categorical"][split].any():
            return f"tree {iteration}: a categorical split (never saved by this plugin)"
    return ""
