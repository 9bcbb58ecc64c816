"""The CLI's stop request: Ctrl-C and a scheduler's SIGTERM both stop training after a batch."""

from __future__ import annotations

import io
import os
import signal

import pytest

from napari_celldenoise.cli.progress import StopOnInterrupt


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_asks_to_stop_the_second_aborts(sig):
    before = signal.getsignal(sig)
    stream = io.StringIO()
    with StopOnInterrupt(stream) as stop:
        assert not stop()
        os.kill(os.getpid(), sig)
        assert stop()
        said = stream.getvalue()
        assert "stopping after this batch" in said
        # a scheduler's SIGTERM is not typed at a keyboard: the hint names what aborts
        assert ("Ctrl-C again" in said) == (sig == signal.SIGINT)
        assert ("SIGTERM: " in said) == (sig == signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), sig)
    assert signal.getsignal(sig) is before  # handlers restored
