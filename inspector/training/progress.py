"""Training progress for people: a live bar on a terminal, one line per epoch in a log file.

Long CPU runs are watched through ``tail -f`` as often as on a terminal, so the epoch
lines are always written; the batch bar appears only when stderr is a terminal.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from inspector.training.ultralytics import TrainProgress


def _fmt_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


class ProgressReporter:
    """Receives :class:`TrainProgress` events; use as a context manager around training."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None, label: str = "training") -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.label = label
        self._progress: Any = None
        self._task: Any = None
        self.epochs_seen = 0
        self.batch_line_every_s = 60.0  # without a terminal: a batch line per minute shows the run is alive
        self._last_batch_line = 0.0
        self.last: TrainProgress | None = None

    def __enter__(self) -> ProgressReporter:
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=None, info="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self.stream, flush=True)

    def __call__(self, event: TrainProgress) -> None:
        self.last = event
        loss = sum(event.losses.values())
        if event.kind == "batch":
            if self._progress is None:
                if event.elapsed_s - self._last_batch_line >= self.batch_line_every_s:
                    self._last_batch_line = event.elapsed_s
                    self._line(
                        f"{self.label}: epoch {event.epoch}/{event.epochs} batch {event.batch}/{event.batches} "
                        f"loss {loss:.4f} elapsed {_fmt_minutes(event.elapsed_s)}"
                    )
                return
            if self._progress is not None:
                self._progress.update(
                    self._task,
                    description=f"{self.label} epoch {event.epoch}/{event.epochs}",
                    completed=event.batch,
                    total=event.batches,
                    info=f"loss {loss:.3f}",
                )
            return
        m = event.metrics
        if event.kind == "final":
            if "metrics/mAP50(B)" in m:
                self._line(
                    f"{self.label}: best weights on the validation split: mAP50 {m['metrics/mAP50(B)']:.4f} "
                    f"mAP50-95 {m.get('metrics/mAP50-95(B)', 0.0):.4f}"
                )
            return
        self.epochs_seen += 1
        map50 = m.get("metrics/mAP50(B)")
        map5095 = m.get("metrics/mAP50-95(B)")
        per_epoch = event.elapsed_s / max(1, self.epochs_seen)
        remaining = max(0, event.epochs - event.epoch) * per_epoch
        val = f" val mAP50 {map50:.4f} mAP50-95 {map5095:.4f}" if map50 is not None and map5095 is not None else ""
        self._line(
            f"{self.label}: epoch {event.epoch}/{event.epochs} loss {loss:.4f}{val} "
            f"elapsed {_fmt_minutes(event.elapsed_s)} (~{_fmt_minutes(per_epoch)}/epoch, "
            f"~{_fmt_minutes(remaining)} left)"
        )
