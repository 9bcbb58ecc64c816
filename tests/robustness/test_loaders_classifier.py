"""Spot classifier files: nothing runs when one is opened, unless the user trusts a pickle."""

from __future__ import annotations

import io
import pickle
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest

from napari_celldenoise.cli.main import main
from napari_celldenoise.spots import classifier_file
from napari_celldenoise.spots.classifier_file import UntrustedPickle, trust_pickle
from napari_celldenoise.spots.classify import SpotClassifier, apply_classifier

FEATURES = ["sigma", "photons"]


class _Marker:
    """Unpickling this opens (creates) ``path``: any code could run in its place."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _evil(tmp_path, name="shared.joblib"):
    marker = tmp_path / "pwned"
    path = tmp_path / name
    payload = {"format": classifier_file.MODEL_FORMAT, "version": 1, "hook": _Marker(marker)}
    path.write_bytes(pickle.dumps(payload))
    return path, marker


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    n = 120
    table = pd.DataFrame({"sigma": rng.uniform(0.5, 2.5, n), "photons": rng.uniform(10, 900, n)})
    labels = np.where((table["sigma"] < 1.8) & (table["photons"] > 200), "good", "bad")
    clf = SpotClassifier(FEATURES, box=3, use_image=False).fit(table, labels)
    return clf, table


def test_skops_file_round_trips_with_identical_predictions(trained, tmp_path):
    clf, table = trained
    path = clf.save(tmp_path / "clf.skops")
    assert zipfile.is_zipfile(path)
    again = SpotClassifier.load(path)
    np.testing.assert_array_equal(again.predict_proba(table), clf.predict_proba(table))
    assert (again.features, again.box, again.use_image) == (FEATURES, 3, False)
    assert again.info == clf.info
    with pytest.raises(ValueError, match=r"\.skops"):
        clf.save(tmp_path / "clf.joblib")


def test_malicious_pickle_is_not_executed_without_trust(tmp_path):
    path, marker = _evil(tmp_path)
    with pytest.raises(UntrustedPickle, match="can run any code.*--trust"):
        SpotClassifier.load(path)
    with pytest.raises(UntrustedPickle):  # through the path the CLI's job takes
        apply_classifier(pd.DataFrame({"sigma": [1.0]}), path)
    disguised = tmp_path / "looks_safe.skops"
    disguised.write_bytes(path.read_bytes())
    with pytest.raises(UntrustedPickle):
        SpotClassifier.load(disguised)
    assert not marker.exists()
    # The file really is hostile: trusting it runs its code (and the payload is then refused).
    with pytest.raises(ValueError, match="damaged|not"):
        SpotClassifier.load(path, trust=True)
    assert marker.exists()


def test_cli_refuses_a_pickle_in_one_line_and_trust_loads_an_old_classifier(
    trained, tmp_path, capsys
):
    path, marker = _evil(tmp_path)
    image = tmp_path / "frame.tif"
    import tifffile

    tifffile.imwrite(image, np.zeros((32, 32), np.uint16))
    out = tmp_path / "spots.csv"
    assert main(["spots", str(image), "-o", str(out), "--classify", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--trust" in err and "Traceback" not in err
    assert not marker.exists() and not out.exists()

    clf, table = trained  # an old (version 1) joblib classifier, as earlier releases saved it
    old = tmp_path / "old.joblib"
    joblib.dump({**clf._payload(), "format": classifier_file.MODEL_FORMAT, "version": 1}, old)
    with pytest.raises(UntrustedPickle):
        SpotClassifier.load(old)
    np.testing.assert_array_equal(
        SpotClassifier.load(old, trust=True).predict_proba(table), clf.predict_proba(table)
    )
    args = ["spots", str(image), "-o", str(out), "--classify", str(old), "--trust", "-q"]
    assert main(args) == 0, capsys.readouterr().err
    assert out.exists()


def test_trust_is_for_the_file_as_it_was(tmp_path):
    path, marker = _evil(tmp_path, "changed.joblib")
    path.write_bytes(pickle.dumps({"format": "other"}))
    trust_pickle(path)
    with pytest.raises(ValueError, match="not a napari-celldenoise"):
        SpotClassifier.load(path)  # trusted: loads, and is refused for what it holds
    path.write_bytes(pickle.dumps({"hook": _Marker(marker)}))  # swapped after the grant
    with pytest.raises(UntrustedPickle):
        SpotClassifier.load(path)
    assert not marker.exists()


def _rewrite(path, out, edit):
    """Copy the skops zip ``path`` to ``out`` with ``edit(name, bytes) -> bytes`` applied."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, edit(name, src.read(name)))
    return out


def test_skops_files_outside_the_allow_list_or_damaged_are_refused(trained, tmp_path):
    clf, _ = trained
    good = clf.save(tmp_path / "good.skops")

    def foreign_type(name, data):
        if name != "schema.json":
            return data
        return data.replace(b'"LabelEncoder"', b'"FunctionTransformer"').replace(
            b"sklearn.preprocessing._label", b"sklearn.preprocessing._function_transformer"
        )

    bad = _rewrite(good, tmp_path / "foreign.skops", foreign_type)
    with pytest.raises(ValueError, match="types a spot classifier does not use.*Function"):
        SpotClassifier.load(bad)

    # A tree whose child index points outside its node array (sklearn would read out of bounds).
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    def out_of_bounds(name, data):
        if not name.endswith(".npy"):
            return data
        arr = np.load(io.BytesIO(data), allow_pickle=False)
        if arr.dtype != PREDICTOR_RECORD_DTYPE:
            return data
        arr = arr.copy()
        split = np.flatnonzero(~arr["is_leaf"].astype(bool))
        if len(split):
            arr["left"][split[0]] = 10**6
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        return buf.getvalue()

    bad = _rewrite(good, tmp_path / "oob.skops", out_of_bounds)
    with pytest.raises(ValueError, match="child index out of range"):
        SpotClassifier.load(bad)

    truncated = tmp_path / "truncated.skops"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(ValueError, match="not a"):
        SpotClassifier.load(truncated)
    with pytest.raises(ValueError, match="no such"):
        SpotClassifier.load(tmp_path / "absent.skops")
