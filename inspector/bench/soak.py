"""``make soak``: one station served for a long time under a steady load, and whether it stays flat.

A leak shows only with time: memory, descriptors or threads that grow with every request, a
database that slows as it fills. The soak starts ``inspector serve`` as ``make run`` does (its
embedded defaults: the synthetic bench camera, the capture trigger, the live view, the active model)
on a temporary data folder, keeps one live-view viewer reading the MJPEG stream, and lets API clients
post inspections, read some back, list and decide, without pause. At the end of each window it
writes to ``bench/soak.json`` what the clients saw (requests, errors by status, POST latency) and
what the server holds (RSS, descriptors, threads, database and image folder size). The verdict
compares the last window with the second (the first pays for warm-up): within 10% is flat.

    python -m inspector.bench.soak [--minutes 20] [--clients 4] [--window-s 300] [--out bench/soak.json]

It exits non-zero when a request fails, an acknowledged inspection is missing or the server dies;
a figure that is not flat is reported, not failed.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspector.bench.api import stored_ids, unique_jpeg, wait_ready
from inspector.bench.processes import free_port, stop
from inspector.bench.timing import percentiles

if TYPE_CHECKING:
    import httpx

    from inspector.config import Settings

FLAT_WITHIN = 0.10  # flat: the last window within 10% of the second
RMA_PREFIX = "RMA-SOAK"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Plan:
    """What one soak runs: its length, its windows, its clients and the pictures they send."""

    seconds: float
    window_s: float
    clients: int
    pool: int = 40
    out: Path = Path("bench/soak.json")
    env: dict[str, str] = field(default_factory=dict)  # set for the server on top of this process's environment
    keep: bool = False  # keep the data folder and the server log even when the run is clean
    work: Path | None = None  # where the temporary data folder goes; None = the system's temporary folder

    @property
    def windows(self) -> int:
        return max(1, round(self.seconds / self.window_s))


class Tally:
    """The clients' requests of the window under way; :meth:`cut` hands them over and starts the next one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._new()
        self.acknowledged: set[str] = set()

    def _new(self) -> None:
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.post_ms: list[float] = []
        self.frames = 0

    def request(self, kind: str, status: int | str, ms: float) -> None:
        """One answered (``status`` an int) or failed (``status`` the exception's name) request."""
        with self._lock:
            self.requests[kind] += 1
            if not isinstance(status, int) or status >= 400:
                self.errors[f"{kind} {status}"] += 1
            elif kind == "post":
                self.post_ms.append(ms)

    def acknowledge(self, inspection_id: str) -> None:
        with self._lock:
            self.acknowledged.add(inspection_id)

    def frame(self, n: int) -> None:
        with self._lock:
            self.frames += n

    def cut(self) -> tuple[Counter[str], Counter[str], list[float], int]:
        with self._lock:
            out = (self.requests, self.errors, self.post_ms, self.frames)
            self._new()
        return out


# ---------------------------------------------------------------------------- the server


def _death_signal() -> Callable[[], None] | None:
    """A hook for the child that asks for SIGTERM when the soak dies (even by SIGKILL): no station is left behind.

    prctl is looked up here, in the parent: the child only makes the call, nothing that could take a lock.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Station:
    """``inspector serve`` on its embedded defaults, its output in ``server.log`` beside its data folder."""

    folder: Path
    proc: subprocess.Popen[bytes]
    base: str
    key: str = ""

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @classmethod
    def start(cls, folder: Path, env: dict[str, str]) -> Station:
        port = free_port()
        with (folder / "server.log").open("wb") as log:  # the child holds its own copy of the descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", "inspector", "serve", "--port", str(port), "--data-dir", str(folder / "data")],
                env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the soak, which stops the server in order
                preexec_fn=_death_signal(),  # noqa: PLW1509 - no lock is taken in the child (see there)
            )
        return cls(folder, proc, f"http://127.0.0.1:{port}")

    def operator_key(self) -> str:
        """The bootstrap operator key (decisions need it; the admin key would do, but a bench has this one)."""
        for line in (self.data_dir / "bootstrap-keys.txt").read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "operator":
                return parts[2]
        return self.key

    def wait(self) -> None:
        self.key = wait_ready(self.base, self.data_dir, self.proc)
        self.key = self.operator_key()

    def gauges(self) -> dict[str, Any]:
        """What the server holds now: RSS, descriptors and threads of it and its children, database and images."""
        procs = process_tree(self.proc.pid)
        rss_kib = threads = fds = 0
        for pid in procs:
            try:
                status = _status(pid)
                rss_kib += int(status.get("VmRSS", "0 kB").split()[0])
                threads += int(status.get("Threads", "0"))
                fds += sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
            except (FileNotFoundError, ProcessLookupError):
                continue  # a child that ended meanwhile
        db = self.data_dir / "inspector.db"
        return {
            "rss_mb": round(rss_kib / 1024, 1),
            "open_fds": fds,
            "threads": threads,
            "processes": len(procs),
            "db_mb": _mb(sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())),
            "images_mb": _mb(folder_bytes(self.data_dir / "images")),
            "inspections_stored": _count_inspections(db),
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            stop(self.proc)


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it, from the parent ids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # the command name may hold spaces and parentheses: the fields after the last ")"
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (0 when it does not exist yet)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += (Path(root) / name).stat().st_size
            except FileNotFoundError:
                continue  # a temporary file renamed meanwhile
    return total


def _count_inspections(db: Path) -> int | None:
    """Rows in the inspections table, read-only (None when the store is not this SQLite file)."""
    if not db.exists():
        return None
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return int(con.execute("SELECT count(*) FROM inspections").fetchone()[0])
    except sqlite3.Error:
        return None
    finally:
        con.close()


def _mb(n: int) -> float:
    return round(n / 1e6, 2)


# ---------------------------------------------------------------------------- the clients


def render_pool(n: int, size: tuple[int, int]) -> list[bytes]:
    """``n`` synthetic bench pictures as JPEGs, rendered once so that the clients spend no CPU drawing."""
    import cv2

    from inspector.data.synth import render_sample

    out = []
    for seed in range(n):
        ok, buf = cv2.imencode(".jpg", render_sample(seed, size=size).image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise RuntimeError("could not encode a bench picture")
        out.append(buf.tobytes())
    return out


def _timed(tally: Tally, kind: str, client: httpx.Client, method: str, url: str, **kw: Any) -> httpx.Response | None:
    """Send one request, count it in the window, and return the response (None when it failed)."""
    import httpx

    t = time.perf_counter()
    try:
        r = client.request(method, url, **kw)
    except httpx.HTTPError as exc:
        tally.request(kind, type(exc).__name__, 0.0)
        return None
    tally.request(kind, r.status_code, (time.perf_counter() - t) * 1000)
    return r


def _thread(tally: Tally, kind: str, target: Callable[..., None], *args: Any) -> threading.Thread:
    """A client thread whose unexpected end is counted as an error, so that the soak cannot pass with less load."""

    def guarded() -> None:
        try:
            target(*args)
        except Exception as exc:
            tally.request(kind, f"crashed: {type(exc).__name__}: {exc}", 0.0)
            raise

    return threading.Thread(target=guarded, daemon=True)


def api_client(station: Station, k: int, pool: list[bytes], tally: Tally, done: threading.Event) -> None:
    """A WMS and a bench operator in one: post, read some back, list, decide, over one connection, no pause."""
    import httpx

    with httpx.Client(base_url=station.base, headers={"X-API-Key": station.key}, timeout=60) as client:
        i = 0
        while not done.is_set():
            i += 1
            view = unique_jpeg(pool[(k * 7 + i) % len(pool)], 1_000_000 * (k + 1) + i)  # a new file every time
            item = {"rma": f"{RMA_PREFIX}-{k}-{i}", "price": 50.0 + (i % 20) * 10}
            r = _timed(
                tally,
                "post",
                client,
                "POST",
                "/v1/inspections",
                files=[("images", ("view.jpg", view, "image/jpeg"))],
                data={"item": json.dumps(item)},
                headers={"Idempotency-Key": f"soak-{k}-{i}"},
            )
            if r is not None and r.status_code in {200, 201}:
                iid = r.json()["id"]
                tally.acknowledge(iid)
                if i % 2 == 0:
                    _timed(tally, "get", client, "GET", f"/v1/inspections/{iid}")
                if i % 3 == 0:
                    _timed(tally, "decide", client, "POST", f"/v1/inspections/{iid}/decision", json=_decision(i))
            if i % 5 == 0:
                _timed(tally, "list", client, "GET", "/v1/inspections", params={"limit": 20})


def _decision(i: int) -> dict[str, Any]:
    """Mostly accept; every other decision an override with a reason, as a bench does."""
    if i % 2:
        return {"action": "accept"}
    return {"action": "override", "grade": "C", "reason_code": "hidden_damage", "note": "soak"}


def live_viewer(station: Station, tally: Tally, done: threading.Event) -> None:
    """The operator page's live view: one MJPEG stream read the whole time (reopened, and counted, if it breaks)."""
    import httpx

    marker = b"Content-Type: image/jpeg"
    while not done.is_set():
        t = time.perf_counter()
        try:
            with httpx.stream(
                "GET", f"{station.base}/station/stream.mjpg", headers={"X-API-Key": station.key}, timeout=30
            ) as r:
                tally.request("live", r.status_code, (time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    done.wait(1.0)
                    continue
                tail = b""
                for chunk in r.iter_bytes():
                    buf = tail + chunk
                    tally.frame(buf.count(marker))
                    tail = buf[-(len(marker) - 1) :]
                    if done.is_set():
                        return
        except httpx.HTTPError as exc:
            tally.request("live", type(exc).__name__, 0.0)
            done.wait(1.0)


# ---------------------------------------------------------------------------- the run


def window_figures(
    n: int, start: float, end: float, tally: Tally, station: Station, station_status: dict[str, Any]
) -> dict[str, Any]:
    """One window: what the clients saw in it, and what the server holds at its end."""
    requests, errors, post_ms, frames = tally.cut()
    lat = percentiles(post_ms) if post_ms else {"n": 0}
    return {
        "window": n,
        "start_s": round(start, 1),
        "end_s": round(end, 1),
        "requests": dict(sorted(requests.items())),
        "requests_total": sum(v for k, v in requests.items() if k != "live"),
        "errors": dict(sorted(errors.items())),
        "post_inspections": {k: lat[k] for k in ("n", "p50_ms", "p99_ms") if k in lat},
        "inspections_per_s": round(lat["n"] / (end - start), 2),
        "live_view_fps": round(frames / (end - start), 2),
        "trigger_captures": (station_status.get("trigger") or {}).get("captures"),
        **station.gauges(),
    }


def verdict(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The last window's p99, RSS and descriptors against the second's: flat when within 10%."""
    if len(windows) < 2:
        return {"compared": None, "note": "one window: nothing to compare"}
    second, last = windows[1], windows[-1]
    figures = {
        "post_p99_ms": (second["post_inspections"].get("p99_ms"), last["post_inspections"].get("p99_ms")),
        "rss_mb": (second["rss_mb"], last["rss_mb"]),
        "open_fds": (second["open_fds"], last["open_fds"]),
    }
    out: dict[str, Any] = {"compared": [second["window"], last["window"]], "within": FLAT_WITHIN}
    for name, (a, b) in figures.items():
        ratio = round(b / a, 3) if a and b is not None else None
        out[name] = {
            "second": a,
            "last": b,
            "ratio": ratio,
            "flat": ratio is not None and round(abs(ratio - 1), 3) <= FLAT_WITHIN,  # 22 fds against 20 is within
        }
    if len(windows) == 2:
        out["note"] = "two windows: the last is the second, so this compares it with itself"
    return out


def server_settings(plan: Plan) -> Settings:
    """The settings the server runs on: this environment and the plan's additions, read as the server reads them."""
    from unittest import mock

    from inspector.config import Settings

    with mock.patch.dict(os.environ, plan.env):
        return Settings()


def _facts(station: Station, plan: Plan, s: Settings) -> dict[str, Any]:
    """The machine, the model served and the settings the server runs on."""
    import httpx

    from inspector.bench import machine

    served = httpx.get(f"{station.base}/v1/models", headers={"X-API-Key": station.key}, timeout=30).json()
    return {
        "machine": machine.at_start(s.detector.thread_count()),
        "model": {"serving": served.get("serving"), "active": served.get("active")},
        "settings": {
            "detector": s.detector.model_dump(mode="json", include={"backend", "model", "imgsz", "threads", "tiling"}),
            "camera": s.camera.model_dump(mode="json", include={"sources", "fps", "width", "height"}),
            "station_enabled": s.station.enabled,
            "live_width": s.station.live_width,
            "db": s.storage.resolved_db_url().split(":", 1)[0],
            "set_for_the_server": dict(sorted(plan.env.items())),
        },
    }


def _station_status(station: Station) -> dict[str, Any]:
    import httpx

    try:
        r = httpx.get(f"{station.base}/station/status", headers={"X-API-Key": station.key}, timeout=30)
        return dict(r.json()) if r.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return {}


@contextmanager
def _stopped_on_signals() -> Iterator[None]:
    """SIGTERM (and SIGHUP) end the soak as Ctrl-C does, so the server is stopped and the figures kept."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def run(plan: Plan, log: Callable[[str], None] = print) -> dict[str, Any]:
    """The soak: server, clients and viewer for ``plan.windows`` windows; ``plan.out`` rewritten after each."""
    folder = Path(tempfile.mkdtemp(prefix="inspector-soak-", dir=plan.work))
    station = Station.start(folder, plan.env)
    done = threading.Event()
    result: dict[str, Any] = {"complete": False, "ok": False}
    try:
        with _stopped_on_signals():
            result = _soak(plan, station, done, log)
    finally:
        done.set()
        station.stop()
        if result["complete"]:
            # a server that hangs on its way out after a long run is a finding too (stop() kills it after 20 s)
            result["server_exit_code"] = station.proc.returncode
            # uvicorn ends with the signal it was stopped by once it has shut down; a kill shows as -SIGKILL
            result["server_stopped_cleanly"] = station.proc.returncode in {0, -signal.SIGTERM}
            totals = result["totals"]
            result["ok"] = not totals["errors"] and not totals["lost"] and result["server_stopped_cleanly"]
            _write(plan.out, result)
        if result["ok"] and not plan.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            log(f"kept the data folder and the server log: {folder}")
    return result


def _soak(plan: Plan, station: Station, done: threading.Event, log: Callable[[str], None]) -> dict[str, Any]:
    settings = server_settings(plan)
    camera = settings.camera
    pool = render_pool(plan.pool, (camera.width, camera.height))  # while the server starts
    station.wait()
    result: dict[str, Any] = {
        "complete": False,
        "ok": False,
        "plan": {"minutes": round(plan.seconds / 60, 2), "window_s": plan.window_s, "clients": plan.clients},
        "load": {
            "api_clients": plan.clients,
            "live_view_viewers": 1,
            "pictures": f"{plan.pool} synthetic renders at {camera.width}x{camera.height}, JPEG q90, each sent "
            "with a new comment so every upload is a new file",
            "per_client": "POST /v1/inspections without pause; GET it back every 2nd, decide every 3rd "
            "(accept or override), list every 5th",
        },
        **_facts(station, plan, settings),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "windows": [],
    }
    tally = Tally()
    threads = [_thread(tally, "live", live_viewer, station, tally, done)]
    threads += [_thread(tally, "client", api_client, station, k, pool, tally, done) for k in range(plan.clients)]
    t0 = time.monotonic()
    for thread in threads:
        thread.start()
    start = 0.0
    for n in range(1, plan.windows + 1):
        end = n * plan.window_s
        while (left := t0 + end - time.monotonic()) > 0:
            if station.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {station.proc.returncode}; see {station.folder}")
            time.sleep(min(left, 1.0))
        w = window_figures(n, start, time.monotonic() - t0, tally, station, _station_status(station))
        result["windows"].append(w)
        result["verdict"] = verdict(result["windows"])
        _write(plan.out, result)
        log(
            f"window {n}/{plan.windows}: {w['requests_total']} requests, {sum(w['errors'].values())} errors, "
            f"POST p50 {w['post_inspections'].get('p50_ms')} ms p99 {w['post_inspections'].get('p99_ms')} ms, "
            f"RSS {w['rss_mb']} MB, {w['open_fds']} fds, {w['threads']} threads, db {w['db_mb']} MB, "
            f"images {w['images_mb']} MB, live view {w['live_view_fps']} fps"
        )
        start = w["end_s"]
    done.set()
    for thread in threads:
        thread.join(90)
    result["totals"] = _totals(result["windows"], tally, station)
    result["machine"].update(_machine_at_end())
    result["complete"] = True
    return result


def _totals(windows: list[dict[str, Any]], tally: Tally, station: Station) -> dict[str, Any]:
    """Every window together, and whether every acknowledged inspection is stored."""
    errors: Counter[str] = Counter()
    for w in windows:
        errors.update(w["errors"])
    left_requests, left_errors, _, _ = tally.cut()  # what the clients finished after the last window closed
    errors.update(left_errors)
    stored = stored_ids(station.base, station.key, RMA_PREFIX)
    return {
        "requests": sum(w["requests_total"] for w in windows) + sum(left_requests.values()),
        "errors": dict(sorted(errors.items())),
        "acknowledged": len(tally.acknowledged),
        "lost": len(tally.acknowledged - stored),
    }


def _machine_at_end() -> dict[str, Any]:
    from inspector.bench import machine

    return machine.at_end()


def _write(path: Path, result: dict[str, Any]) -> None:
    from inspector.registry import write_atomic

    write_atomic(path, json.dumps(result, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inspector.bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4, help="API clients, beside one live-view viewer")
    parser.add_argument("--window-s", type=float, default=300.0, help="seconds per window")
    parser.add_argument("--pool", type=int, default=40, help="bench pictures rendered once at start")
    parser.add_argument("--out", type=Path, default=Path("bench/soak.json"))
    parser.add_argument("--keep", action="store_true", help="keep the data folder and server log of a clean run")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.window_s <= 0 or args.minutes <= 0 or args.pool < 1:
        parser.error("--minutes, --clients, --window-s and --pool must be positive")
    plan = Plan(args.minutes * 60, args.window_s, args.clients, args.pool, args.out, keep=args.keep)
    print(f"soak: {plan.windows} windows of {plan.window_s:.0f} s, {plan.clients} API clients, one live view")
    try:
        result = run(plan, log=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print(f"soak: interrupted; the windows measured so far are in {plan.out}", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 1
    v = result.get("verdict", {})
    flat = {k: v[k]["flat"] for k in ("post_p99_ms", "rss_mb", "open_fds") if k in v}
    print(f"soak: written {plan.out}; totals {result['totals']}; flat {flat}", flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
