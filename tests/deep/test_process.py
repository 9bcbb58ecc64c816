"""Training through the child-process runner, as the napari dock does (no TensorFlow here)."""

from __future__ import annotations

import time

from napari_celldenoise.deep.api import train
from napari_celldenoise.deep.model import BEST, LAST
from napari_celldenoise.jobs import Done, Epoch, run_in_process


def test_child_training_streams_epochs_and_stop_keeps_weights(tmp_path, small_noisy, tiny_config):
    folder = tmp_path / "m"
    epochs: list[Epoch] = []
    stop = {"now": False}
    last = None
    for event in run_in_process(
        train,
        small_noisy,
        "YX",
        tiny_config(epochs=50, steps=2),
        str(folder),
        should_stop=lambda: stop["now"],
        grace=60,
    ):
        if isinstance(event, Epoch):
            epochs.append(event)
            stop["now"] = True  # Stop after the first epoch
        last = event
    assert isinstance(last, Done) and last.stopped
    whole = [e for e in epochs if not e.partial]  # an epoch cut by Stop is not counted
    assert 1 <= len(epochs) <= 2 and last.result.epochs_done == len(whole) >= 1
    assert (folder / BEST).is_file() and (folder / LAST).is_file()


def test_child_reports_bad_input_quickly(tmp_path, tiny_config):
    import numpy as np
    import pytest

    from napari_celldenoise.jobs import ChildProcessFailed

    start = time.monotonic()
    with pytest.raises(ChildProcessFailed, match="NaN"):
        list(
            run_in_process(
                train,
                np.full((64, 64), np.nan, np.float32),
                "YX",
                tiny_config(),
                str(tmp_path / "m"),
            )
        )
    assert not (tmp_path / "m").exists()
    assert time.monotonic() - start < 60
