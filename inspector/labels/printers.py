"""Where a label goes: a folder, a CUPS queue (``lp``) or a printer's raw TCP port (9100).

``labels.printer`` names one (``folder:PATH``, ``cups:QUEUE``, ``tcp:HOST:PORT``).
Each attempt is bounded by ``labels.timeout_s`` and ends in :class:`PrintError`
with a sentence for the operator when the label did not go out.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

_QUEUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,126}$")


class PrintError(Exception):
    """This attempt did not print the label; the job is tried again later."""


@dataclass(frozen=True, slots=True)
class Printer:
    kind: Literal["folder", "cups", "tcp"]
    target: str  # the folder, the queue or the host
    port: int = 0

    @property
    def takes_pdf(self) -> bool:
        """A raw TCP port speaks the printer's language (ZPL) only."""
        return self.kind != "tcp"


def parse_printer(spec: str) -> Printer:
    """``folder:PATH``, ``cups:QUEUE`` or ``tcp:HOST:PORT``; a :class:`ValueError` saying what is wrong."""
    kind, sep, rest = spec.partition(":")
    if not sep or not rest.strip():
        raise ValueError(f"labels.printer {spec!r}: expected folder:PATH, cups:QUEUE or tcp:HOST:PORT")
    if kind == "folder":
        return Printer("folder", rest)
    if kind == "cups":
        if not _QUEUE.match(rest):
            raise ValueError(f"labels.printer {spec!r}: {rest!r} is not a CUPS queue name")
        return Printer("cups", rest)
    if kind == "tcp":
        host, colon, port = rest.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"labels.printer {spec!r}: expected tcp:HOST:PORT, e.g. tcp:10.0.0.7:9100")
        return Printer("tcp", host, int(port))
    raise ValueError(f"labels.printer {spec!r}: unknown kind {kind!r}; expected folder, cups or tcp")


def send(printer: Printer, data: bytes, *, name: str, raw: bool, timeout_s: float) -> None:
    """Print ``data``; ``name`` names the file or the CUPS job, ``raw`` says it is printer language (ZPL)."""
    if printer.kind == "folder":
        _to_folder(Path(printer.target), name, data)
    elif printer.kind == "cups":
        _to_cups(printer.target, data, name=name, raw=raw, timeout_s=timeout_s)
    else:
        _to_port(printer.target, printer.port, data, timeout_s=timeout_s)


def _to_folder(folder: Path, name: str, data: bytes) -> None:
    """Written whole or not at all: a temporary file in the folder, synced, then renamed to ``name``."""
    if not folder.is_dir():
        raise PrintError(f"the label folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".label-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            Path(tmp).replace(folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise PrintError(f"cannot write the label to {folder}: {exc.strerror or exc}") from exc


def _to_cups(queue: str, data: bytes, *, name: str, raw: bool, timeout_s: float) -> None:
    lp = shutil.which("lp")
    if lp is None:
        raise PrintError("the lp command is not installed (Debian: cups-client)")
    args = [lp, "-d", queue, "-t", name, *(["-o", "raw"] if raw else [])]
    try:
        done = subprocess.run(args, input=data, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise PrintError(f"lp -d {queue} did not answer within {timeout_s:g} s") from exc
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise PrintError(f"lp -d {queue} failed: {said[-1] if said else f'exit status {done.returncode}'}")


def _to_port(host: str, port: int, data: bytes, *, timeout_s: float) -> None:
    """Connect, send, half-close, then wait for the printer to close: it has taken the whole label then."""
    where = f"{host}:{port}"
    deadline = time.monotonic() + timeout_s

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return remaining

    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            conn.settimeout(left())
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
            while True:
                conn.settimeout(left())
                if not conn.recv(4096):
                    return
    except ConnectionRefusedError as exc:
        raise PrintError(f"printer {where} refused the connection (off, or nothing listens on that port)") from exc
    except TimeoutError as exc:
        raise PrintError(f"printer {where} did not take the label within {timeout_s:g} s") from exc
    except OSError as exc:
        raise PrintError(f"printer {where} not reachable: {exc.strerror or exc}") from exc
