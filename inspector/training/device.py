"""Where training runs: ``--device cpu | cuda:0 | 0,1``, checked before any work starts.

The CPU is the default (and the only device this project's tests see). A CUDA device is
handed to ultralytics as its index list ("0", "0,1": several run its DDP); a device that
is not there is refused in one line before data is prepared or a model built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from inspector.training.provenance import hardware


class DeviceError(ValueError):
    """The device asked for cannot run here."""


@dataclass(frozen=True, slots=True)
class Device:
    arg: str  # as ultralytics takes it: "cpu", "0", "0,1"
    kind: Literal["cpu", "cuda"]
    names: tuple[str, ...]

    @property
    def label(self) -> str:
        """As the card shows it: ``cpu`` or ``cuda:0,1``."""
        return "cpu" if self.kind == "cpu" else f"cuda:{self.arg}"


def parse_device(text: str) -> Device:
    """``cpu``, ``cuda``, ``cuda:N``, ``N`` or ``N,M,...``: the device, or :class:`DeviceError` saying why not."""
    t = text.strip().lower().replace(" ", "")
    if t == "cpu":
        return Device("cpu", "cpu", (str(hardware()["cpu"]),))
    t = "0" if t == "cuda" else t.removeprefix("cuda:")
    parts = t.split(",")
    if not all(p.isdigit() for p in parts):
        raise DeviceError(f"--device {text!r}: expected cpu, cuda:N or GPU indices such as 0,1")
    import torch

    if not torch.cuda.is_available():
        raise DeviceError(
            f"--device {text}: no CUDA device here (torch {torch.__version__}, CUDA "
            f"{torch.version.cuda or 'not built in'}); train on the CPU with --device cpu"
        )
    count = torch.cuda.device_count()
    missing = [p for p in parts if int(p) >= count]
    if missing:
        raise DeviceError(f"--device {text}: GPU {', '.join(missing)} not found ({count} CUDA device(s) here)")
    names = tuple(torch.cuda.get_device_name(int(p)) for p in parts)
    return Device(",".join(str(int(p)) for p in parts), "cuda", names)
