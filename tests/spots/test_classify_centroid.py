import numpy as np
import pandas as pd
import pytest

from napari_celldenoise.jobs import run
from napari_celldenoise.spots.boxes import normalise_boxes, spot_images
from napari_celldenoise.spots.centroid import (
    CentroidModel,
    train_ridge,
    training_set_from_table,
    training_set_simulated,
)
from napari_celldenoise.spots.classify import (
    Rule,
    RuleSet,
    SpotClassifier,
    apply_classifier,
    default_rules,
    train_classifier,
)
from napari_celldenoise.spots.config import DEFAULT_THRESHOLD, SpotsConfig
from napari_celldenoise.spots.pipeline import locate


def test_rules_classify_and_explain(tmp_path):
    t = pd.DataFrame({"sigma": [1.3, 0.3, 1.2], "photons": [500, 500, 10.0]})
    rules = RuleSet((Rule("sigma", 0.8, 2.0), Rule("photons", 50, None)))
    assert rules.classify(t).tolist() == ["good", "bad", "bad"]
    assert rules.failed(t) == [[], ["sigma"], ["photons"]]
    path = rules.save(tmp_path / "r.yaml")
    assert RuleSet.load(path) == rules
    assert apply_classifier(t, path)["class"].tolist() == ["good", "bad", "bad"]
    with pytest.raises(KeyError, match="nope"):
        RuleSet((Rule("nope", 1, 2),)).classify(t)
    assert "sigma" in {r.feature for r in default_rules(1.3).rules}


@pytest.fixture(scope="module")
def fitted(movie_module):
    frames, _ = movie_module
    table = locate(frames, SpotsConfig(threshold=DEFAULT_THRESHOLD, min_significance=0))
    return frames, table


@pytest.fixture(scope="module")
def movie_module():
    from napari_celldenoise.spots.simulate import simulate_spots

    return simulate_spots(4, (64, 64), n_spots=12, background=(5.0, 40.0), seed=2)


def test_classifier_learns_the_users_labels_and_round_trips(fitted, tmp_path):
    frames, table = fitted
    labels = table["class"].to_numpy()
    assert set(labels) == {"good", "bad"}
    images = spot_images(frames, table, 7)
    assert images.shape == (len(table), 7, 7)
    np.testing.assert_allclose(np.clip(images, 0, None).sum((1, 2)) >= 0.99, True)
    clf = run(train_classifier(table, labels, images))
    assert (clf.predict(table, images) == labels).mean() > 0.95
    path = clf.save(tmp_path / "clf.skops")
    again = SpotClassifier.load(path)
    np.testing.assert_array_equal(again.predict(table, images), clf.predict(table, images))
    out = apply_classifier(table, path, frames=frames)
    assert (out["class"].to_numpy() == labels).mean() > 0.95
    with pytest.raises(ValueError, match="both classes"):
        SpotClassifier().fit(table, np.full(len(table), "good"), images)
    (tmp_path / "junk.skops").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a spot classifier"):
        SpotClassifier.load(tmp_path / "junk.skops")


def test_ridge_centroid_is_accurate_and_saves(tmp_path):
    boxes, offsets = training_set_simulated(6000, seed=0, photons=(1000, 5000))
    model = train_ridge(boxes, offsets)
    test_boxes, test_offsets = training_set_simulated(2000, seed=9, photons=(1000, 5000))
    err = model.predict(test_boxes) - test_offsets
    assert np.abs(err.mean(0)).max() < 0.01
    assert err.std(0).max() < 0.08
    path = model.save(tmp_path / "c.npz")
    np.testing.assert_allclose(
        CentroidModel.load(path).predict(test_boxes[:10]), model.predict(test_boxes[:10])
    )
    with pytest.raises(ValueError, match="boxes"):
        model.predict(np.zeros((1, 5, 5)))


def test_training_set_from_fitted_spots(fitted):
    frames, table = fitted
    boxes, offsets = training_set_from_table(frames, table, 7)
    good = table[table["class"] == "good"]
    assert 0 < len(boxes) <= len(good)
    assert np.abs(offsets).max() <= 0.5 + 1e-9
    z = normalise_boxes(boxes)
    assert np.allclose(np.clip(z, 0, None).sum((1, 2)), 1.0)


@pytest.mark.slow
def test_tensorflow_centroid_trains_in_a_child_process():
    from napari_celldenoise.jobs import Epoch
    from napari_celldenoise.spots.centroid import train_mlp_in_process

    boxes, offsets = training_set_simulated(3000, seed=1, photons=(1000, 5000))
    events = []
    model = run(
        train_mlp_in_process(boxes, offsets, epochs=10, hidden=32, learning_rate=5e-3),
        on_event=events.append,
    )
    assert sum(isinstance(e, Epoch) for e in events) == 10
    assert model.kind == "mlp"
    test_boxes, test_offsets = training_set_simulated(500, seed=4, photons=(1000, 5000))
    assert (model.predict(test_boxes) - test_offsets).std(0).max() < 0.15


def test_centroid_mode_classes_background_maxima_bad():
    """No fit in centroid mode: the per-box likelihood-ratio test keeps the spots good and
    classes the background maxima a low threshold lets through bad."""
    from napari_celldenoise.spots.centroid import locate_with_model
    from napari_celldenoise.spots.match import match_points
    from napari_celldenoise.spots.simulate import simulate_spots

    frames, truth = simulate_spots(
        3, (96, 96), n_spots=25, min_distance=8.0, background=20.0, photons=(400, 3000), seed=8
    )
    model = train_ridge(*training_set_simulated(4000, seed=1))
    config = SpotsConfig(threshold="0.3*localnoise(Wave.F1)")
    table = run(locate_with_model(frames, model, config))
    assert table["significance"].notna().all() and (table["photons"] > 0).any()

    def match(t):
        return match_points(
            t[["y", "x"]].to_numpy(),
            np.column_stack([truth["y"], truth["x"]]),
            found_frame=t["frame"].to_numpy(),
            true_frame=truth["frame"],
            tolerance=1.0,
        )

    everything = match(table)
    good = match(table[table["class"] == "good"])
    assert everything.precision < 0.8, everything.summary()  # the threshold is low on purpose
    assert good.precision >= 0.97 and good.recall >= 0.97, good.summary()
    bright = truth["photons"] > 1000
    sure = match(table[table["class"] == "good"]).true_index
    assert np.isin(np.flatnonzero(bright), sure).all()


def test_retrain_classifier_learns_the_users_classes_and_predicts_every_spot():
    from napari_celldenoise.jobs import run
    from napari_celldenoise.spots.classify import retrain_classifier
    from napari_celldenoise.spots.config import SpotsConfig
    from napari_celldenoise.spots.pipeline import find_spots
    from napari_celldenoise.spots.simulate import simulate_spots

    frames, _ = simulate_spots(3, (96, 96), n_spots=40, background=10.0, seed=2)
    table = run(find_spots(frames, SpotsConfig()))
    labels = np.where(table["photons"] < table["photons"].median(), "bad", "good")
    clf, predicted = run(retrain_classifier(frames, table, labels, axes="TYX", box=7))
    assert clf.info["n_good"] + clf.info["n_bad"] == len(table)
    assert len(predicted) == len(table)
    assert (np.asarray(predicted) == labels).mean() > 0.8
