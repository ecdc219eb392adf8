"""The bench's child processes: a part run alone (its memory its own), a free port, a clean stop."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import Any


def run_part(args: list[str], threads: int) -> dict[str, Any]:
    """``python -m inspector.bench ARGS`` in a child: the JSON it prints last, or ``{"error": ...}``."""
    env = dict(os.environ, INSPECTOR_THREADS=str(threads))
    proc = subprocess.run(
        [sys.executable, "-m", "inspector.bench", *args], capture_output=True, text=True, env=env, timeout=3600
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def free_port() -> int:
    """A loopback port nothing listens on, for a server the bench starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server, and kill it if it has not gone in 20 s."""
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
