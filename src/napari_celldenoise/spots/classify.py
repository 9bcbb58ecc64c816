"""Good/bad classification of fitted spots: editable rules and a trainable classifier.

Rules are ranges on the fit features (sigma near the PSF width, ellipticity, photons,
uncertainty, fit quality...). The classifier is a scikit-learn model on the same features plus
the normalised spot image; the user corrects classes in napari and retrains it. Both are saved
to and loaded from files: rules as YAML (safe loading), the classifier as a ``.skops`` file
(:mod:`.classifier_file`), which runs no code when opened. Old ``.joblib`` classifiers are
pickles and load only when the user trusts them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..atomic import atomic_write
from ..jobs import Done, Event, Log, Progress, ShouldStop, never_stop
from .boxes import spot_images
from .table import FEATURES

logger = logging.getLogger(__name__)

GOOD, BAD = "good", "bad"
CLASSES = (GOOD, BAD)


@dataclass(frozen=True)
class Rule:
    """``low <= table[feature] <= high`` (either bound may be None)."""

    feature: str
    low: float | None = None
    high: float | None = None

    def test(self, table: pd.DataFrame) -> np.ndarray:
        if self.feature not in table:
            raise KeyError(f"rule on {self.feature!r}: the table has no such column")
        v = pd.to_numeric(table[self.feature], errors="coerce").to_numpy(float)
        ok = np.isfinite(v) | (self.low is None and self.high is None)
        if self.low is not None:
            ok &= v >= self.low
        if self.high is not None:
            ok &= v <= self.high
        return ok

    def text(self) -> str:
        lo = "" if self.low is None else f"{self.low:g} <= "
        hi = "" if self.high is None else f" <= {self.high:g}"
        return f"{lo}{self.feature}{hi}"


@dataclass(frozen=True)
class RuleSet:
    """A spot is good when it passes every rule."""

    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def classify(self, table: pd.DataFrame) -> np.ndarray:
        """``"good"``/``"bad"`` per row."""
        ok = np.ones(len(table), bool)
        for rule in self.rules:
            ok &= rule.test(table)
        return np.where(ok, GOOD, BAD).astype(object)

    def failed(self, table: pd.DataFrame) -> list[list[str]]:
        """For each row, the rules it fails (to explain a class)."""
        fails = [rule.test(table) for rule in self.rules]
        return [
            [r.feature for r, f in zip(self.rules, fails) if not f[i]] for i in range(len(table))
        ]

    def to_dict(self) -> dict:
        return {"rules": [{"feature": r.feature, "low": r.low, "high": r.high} for r in self.rules]}

    @classmethod
    def from_dict(cls, data: dict) -> RuleSet:
        try:
            rules = tuple(
                Rule(str(r["feature"]), _num(r.get("low")), _num(r.get("high")))
                for r in data.get("rules", [])
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a rule set: {exc}") from None
        return cls(rules)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | os.PathLike) -> Path:
        text = self.to_yaml()
        return atomic_write(path, text.encode("utf-8"), overwrite=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RuleSet:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            detail = " ".join(str(exc).split())
            raise ValueError(f"{path}: not a readable rule file ({detail})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: not a rule file")
        return cls.from_dict(data)


def _num(value: object) -> float | None:
    return None if value is None or value == "" else float(value)  # type: ignore[arg-type]


def default_rules(sigma: float = 1.3, *, pixel_size: float | None = None) -> RuleSet:
    """Rules for super-resolution quality around a PSF of ``sigma`` px.

    A spot is good when its fit is clearly better than a flat background (significance >= 5),
    its width is within 0.6-1.7 x the PSF, it is round (ellipticity <= 1.6), it has at least
    50 photons and its uncertainty is below 0.5 px. There is no rule on the residual (``chi2``)
    by default: in crowded places the neighbours' imperfect subtraction raises it for real
    spots (a ``chi2 <= 3`` rule lost 5 % of the dense benchmark's spots and removed no false
    one that the other rules kept).
    """
    return RuleSet(
        (
            Rule("significance", 5.0, None),
            Rule("sigma", round(0.6 * sigma, 3), round(1.7 * sigma, 3)),
            Rule("ellipticity", None, 1.6),
            Rule("photons", 50.0, None),
            Rule("uncertainty", None, 0.5),
        )
    )


# --- the trainable classifier ------------------------------------------------------------


def feature_matrix(
    table: pd.DataFrame, images: np.ndarray | None, features: list[str]
) -> np.ndarray:
    cols = [pd.to_numeric(table[f], errors="coerce").to_numpy(float) for f in features]
    x = np.column_stack(cols) if cols else np.empty((len(table), 0))
    if images is not None:
        x = np.hstack([x, images.reshape(len(images), -1)])
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


class SpotClassifier:
    """A scikit-learn classifier (gradient boosting) on fit features + the spot image."""

    def __init__(
        self,
        features: list[str] | None = None,
        box: int = 7,
        use_image: bool = True,
        model: object | None = None,
        info: dict | None = None,
    ):
        self.features = list(features or FEATURES)
        self.box = int(box)
        self.use_image = bool(use_image)
        self.model = model
        self.info = dict(info or {})

    @property
    def trained(self) -> bool:
        return self.model is not None

    def _x(self, table: pd.DataFrame, images: np.ndarray | None) -> np.ndarray:
        return feature_matrix(table, images if self.use_image else None, self.features)

    def fit(
        self,
        table: pd.DataFrame,
        labels: np.ndarray,
        images: np.ndarray | None = None,
        *,
        seed: int = 0,
    ) -> SpotClassifier:
        """Train on ``labels`` (``"good"``/``"bad"``); needs both classes."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        y = np.asarray(labels) == GOOD
        if y.all() or not y.any():
            raise ValueError("training needs spots of both classes (mark some good and some bad)")
        if self.use_image and images is None:
            raise ValueError("this classifier uses spot images: pass them")
        model = HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.1, random_state=seed, class_weight="balanced"
        )
        model.fit(self._x(table, images), y)
        self.model = model
        self.info = {
            "n_good": int(y.sum()),
            "n_bad": int((~y).sum()),
            "trained": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        return self

    def predict_proba(self, table: pd.DataFrame, images: np.ndarray | None = None) -> np.ndarray:
        """Probability of ``good`` per spot."""
        if self.model is None:
            raise ValueError("the classifier is not trained yet")
        if len(table) == 0:
            return np.empty(0)
        return self.model.predict_proba(self._x(table, images))[:, 1]  # type: ignore[attr-defined]

    def predict(self, table: pd.DataFrame, images: np.ndarray | None = None) -> np.ndarray:
        return np.where(self.predict_proba(table, images) >= 0.5, GOOD, BAD).astype(object)

    def save(self, path: str | os.PathLike) -> Path:
        """Save as a ``.skops`` file (atomic), which runs no code when it is opened."""
        from .classifier_file import save_classifier

        if self.model is None:
            raise ValueError("nothing to save: the classifier is not trained")
        return save_classifier(path, self._payload())

    def _payload(self) -> dict:
        return {
            "features": self.features,
            "box": self.box,
            "use_image": self.use_image,
            "model": self.model,
            "info": self.info,
        }

    @classmethod
    def load(cls, path: str | os.PathLike, *, trust: bool = False) -> SpotClassifier:
        """Load a ``.skops`` classifier; an old pickle (``.joblib``) only with ``trust``.

        Raises
        ------
        ValueError
            One line: no such file, not a spot classifier, types outside the allow-list, a
            damaged tree, or a pickle that was not trusted (:class:`UntrustedPickle`).
        """
        from .classifier_file import load_classifier

        payload = load_classifier(path, trust=trust)
        return cls(
            payload["features"],
            payload["box"],
            payload["use_image"],
            payload["model"],
            payload.get("info"),
        )


def train_classifier(
    table: pd.DataFrame,
    labels: np.ndarray,
    images: np.ndarray | None,
    *,
    features: list[str] | None = None,
    box: int = 7,
    use_image: bool = True,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Job generator: train a :class:`SpotClassifier`; ``Done(classifier)``."""
    yield Progress(0, 2, f"training on {len(table)} spots")
    if should_stop():
        yield Done(None, stopped=True)
        return
    t0 = time.perf_counter()
    clf = SpotClassifier(features, box, use_image and images is not None).fit(table, labels, images)
    yield Progress(2, 2, "trained")
    yield Log(
        f"classifier trained on {clf.info['n_good']} good and {clf.info['n_bad']} bad "
        f"spots in {time.perf_counter() - t0:.1f} s"
    )
    yield Done(clf)


def load_classifier(path: str | os.PathLike, *, trust: bool = False) -> RuleSet | SpotClassifier:
    """Rules (``.yaml``) or a classifier file; ValueError for a missing one."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such classifier or rules file")
    if path.suffix.lower() in (".yaml", ".yml"):
        return RuleSet.load(path)
    return SpotClassifier.load(path, trust=trust)


def apply_classifier(
    table: pd.DataFrame,
    source: str | os.PathLike | RuleSet | SpotClassifier | None = None,
    *,
    trust: bool = False,
    frames: np.ndarray | None = None,
    sigma: float = 1.3,
    box: int = 7,
    axes: str | None = None,
) -> pd.DataFrame:
    """A copy of ``table`` with its ``class`` column set by ``source``.

    ``source`` is a :class:`RuleSet`, a :class:`SpotClassifier`, a path to a rules YAML or a
    classifier file, or None for :func:`default_rules` around the table's ``psf_sigma``
    (else ``sigma``). A classifier that uses
    spot images needs the ``frames`` the table was fitted on. ``trust`` allows an old pickle
    (``.joblib``) classifier file, which can run code when opened.
    """
    out = table.copy()
    if len(out) == 0:
        return out
    if source is None:
        source = default_rules(float(table.attrs.get("psf_sigma", sigma)))
    elif isinstance(source, str | os.PathLike):
        source = load_classifier(source, trust=trust)
    if isinstance(source, RuleSet):
        out["class"] = source.classify(out)
    else:
        images = None
        if source.use_image:
            if frames is None:
                raise ValueError("this classifier looks at spot images: give the frames")
            images = spot_images(frames, out, source.box, axes)
        out["class"] = source.predict(out, images)
    return out


def retrain_classifier(
    stack: np.ndarray,
    table: pd.DataFrame,
    labels: np.ndarray,
    *,
    axes: str,
    box: int = 7,
    should_stop: ShouldStop = never_stop,
) -> Iterator[Event]:
    """Job generator: train a :class:`SpotClassifier` on ``labels`` and classify ``table``.

    Cuts the spot images out of ``stack`` (``axes`` as in the pipeline), trains as
    :func:`train_classifier` does and predicts every row with the new classifier.

    Returns
    -------
    Iterator[Event]
        Progress and log events, then ``Done((classifier, predicted))``: the classifier and
        one class per row of ``table``; ``Done((None, None), stopped=True)`` when stopped.
    """
    images = spot_images(stack, table, box, axes)
    clf = None
    for event in train_classifier(table, labels, images, box=box, should_stop=should_stop):
        if isinstance(event, Done):
            clf = event.result
            break
        yield event
    if clf is None:
        yield Done((None, None), stopped=True)
        return
    predicted = clf.predict(table, images)
    yield Progress(1, 1, "classifier trained")
    yield Done((clf, predicted))
