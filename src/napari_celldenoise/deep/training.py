"""The training loop shared by all networks: Keras ``fit`` in a thread, events out.

Keras' ``fit`` is blocking, so it runs in a worker thread of the (child) process while the
generator yields the events its callback queues: per-batch :class:`Progress`, per-epoch
:class:`Epoch` and :class:`Preview`. The callback checks ``should_stop`` after every batch
(Stop takes effect within one batch); the last weights are saved after every epoch and when
stopped, the best ones whenever the validation loss of a whole epoch improves. An epoch cut
short by Stop is recorded as partial (in the history and its :class:`Epoch` event): its losses
cover only the batches it ran, so it is never compared with whole epochs for "best" and does
not count in ``epochs_done``. Must run where TensorFlow may be imported (a child process, the
CLI, a ``tf`` test).
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..jobs import Epoch, Event, Log, Preview, Progress, ShouldStop, Timing
from ._tf import keras
from .model import ModelFolder, ModelInfo

_END = object()


def is_improvement(val: float | None, best: float | None, *, partial: bool) -> bool:
    """Whether an epoch's validation loss makes its weights the new best. An epoch cut short
    by Stop never does: its losses cover only the batches it ran."""
    return not partial and val is not None and math.isfinite(val) and (best is None or val < best)


def cosine_rate(peak: float, step: int, total_steps: int) -> float:
    """``peak * (1 + cos(pi * step / total)) / 2``: from ``peak`` at step 0 down to 0.

    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017
    (one cycle per run; a continued run starts a new one).
    """
    done = min(step / max(total_steps, 1), 1.0)
    return peak * 0.5 * (1.0 + math.cos(math.pi * done))


def rate_schedule(rate: Callable[[int], float]) -> Any:
    """A Keras callback setting the learning rate ``rate(step)`` of each batch before it runs
    (``step`` counts this run's batches from 0)."""
    k = keras()

    class _Schedule(k.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.step = 0

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            self.model.optimizer.learning_rate.assign(rate(self.step))
            self.step += 1

    return _Schedule()


def cosine_schedule(learning_rate: float, total_steps: int) -> Any:
    """A Keras callback setting the :func:`cosine_rate` of each batch before it runs."""
    return rate_schedule(lambda step: cosine_rate(learning_rate, step, total_steps))


def fit_events(
    keras_model: Any,
    batches: Iterator[tuple[np.ndarray, np.ndarray]],
    validation: tuple[np.ndarray, np.ndarray],
    *,
    folder: ModelFolder,
    info: ModelInfo,
    epochs: int,
    steps: int,
    should_stop: ShouldStop,
    preview: Callable[[Any], np.ndarray],
    preview_name: str,
    extra_callbacks: list[Any] = (),
) -> Iterator[Event]:
    """Train ``keras_model`` for ``epochs`` more epochs; yields events, returns the final info.

    ``info`` carries ``epochs_done`` and ``best_val_loss`` of earlier runs (resume); the
    folder's info, history and thumbnail are updated after every epoch. A continued run
    (``epochs_done > 0``, last weights already loaded) also takes the optimizer state saved
    with them. Returns ``(info, stopped)``; ``info.epochs_done`` counts whole epochs only.
    """
    k = keras()
    if info.epochs_done:
        yield Log(folder.restore_optimizer(keras_model))
    events: queue.Queue = queue.Queue()
    start_epoch = info.epochs_done
    # the info is written last at an epoch's end: a run killed between the history and the
    # info leaves a whole epoch recorded that the info does not count; it is trained again
    history = [
        r
        for r in folder.read_history()
        if r.get("partial") or (isinstance(r.get("epoch"), int) and r["epoch"] <= start_epoch)
    ]
    total_steps = epochs * steps
    state = {"info": info, "stopped": False, "epoch_start": time.monotonic(), "step": 0}
    state["epoch_steps"] = 0
    durations: list[float] = []

    class _Events(k.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            state["step"] += 1
            state["epoch_steps"] = batch + 1
            if batch == 2 and not durations:
                per = (time.monotonic() - state["epoch_start"]) / 3
                events.put(Timing(per, steps))
                events.put(Log(f"about {per * steps:.0f} s per epoch ({per:.2f} s per batch)"))
            events.put(
                Progress(
                    state["step"],
                    total_steps,
                    f"epoch {self._epoch + 1 - start_epoch}/{epochs}, batch {batch + 1}/{steps}",
                )
            )
            if should_stop():
                state["stopped"] = True
                self.model.stop_training = True

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._epoch = epoch
            state["epoch_start"] = time.monotonic()
            state["epoch_steps"] = 0

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            logs = dict(logs or {})
            seconds = time.monotonic() - state["epoch_start"]
            ran = state["epoch_steps"]
            partial = ran < steps  # Stop inside the epoch
            if not partial:
                durations.append(seconds)
            metrics = {str(key): float(v) for key, v in logs.items() if np.ndim(v) == 0}
            loss = metrics.get("loss", math.nan)
            val = metrics.get("val_loss")
            lr = float(k.backend.get_value(self.model.optimizer.learning_rate))
            current: ModelInfo = state["info"]
            best = current.best_val_loss
            improved = is_improvement(val, best, partial=partial)
            folder.save_weights(self.model, "last")
            folder.save_optimizer(self.model.optimizer)
            if improved:
                folder.save_weights(self.model, "best")
                best = val
            whole = epoch if partial else epoch + 1
            current = current.model_copy(update={"epochs_done": whole, "best_val_loss": best})
            state["info"] = current
            history.append(
                {
                    "epoch": epoch + 1,
                    "loss": loss,
                    "val_loss": val,
                    "learning_rate": lr,
                    "seconds": seconds,
                    "best": improved,
                    "steps": ran,
                    "partial": partial,  # stopped inside it: never the best, not counted
                }
            )
            folder.write_history(history)
            folder.write_info(current)
            remaining = start_epoch + epochs - (epoch + 1)
            eta = (
                float(np.mean(durations)) * remaining if durations and not state["stopped"] else 0.0
            )
            events.put(Epoch(epoch + 1, loss, val, lr, seconds, eta, metrics, ran, steps))
            image = preview(self.model)
            folder.write_thumbnail(image)
            events.put(Preview(image, preview_name, {"epoch": epoch + 1}))

    from .strategy import distribute_batches  # a dataset of static shapes under a strategy

    batches, validation = distribute_batches(batches, validation)

    def work() -> None:
        try:
            keras_model.fit(
                batches,
                validation_data=validation,
                epochs=start_epoch + epochs,
                initial_epoch=start_epoch,
                steps_per_epoch=steps,
                callbacks=[*extra_callbacks, _Events()],
                verbose=0,
            )
        except BaseException as exc:  # handed to the generator's thread
            events.put(exc)
        events.put(_END)

    thread = threading.Thread(target=work, name="celldenoise-fit", daemon=True)
    thread.start()
    while True:
        item = events.get()
        if item is _END:
            break
        if isinstance(item, BaseException):
            thread.join()
            raise item
        yield item
    thread.join()
    final: ModelInfo = state["info"]
    if state["stopped"]:
        last = history[-1] if history else {"epoch": final.epochs_done, "steps": steps}
        part = f" ({last['steps']} of its {steps} batches)" if last["steps"] < steps else ""
        yield Log(
            f"stopped in epoch {last['epoch']}{part}: {final.epochs_done} whole epoch(s), "
            "best and last weights kept"
        )
    return final, state["stopped"]
