"""Where a label goes: the printer setting, a folder, a CUPS queue (a stand-in ``lp``), a raw TCP port."""

from __future__ import annotations

import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from inspector.config import LabelsConfig
from inspector.labels.printers import Printer, PrintError, parse_printer, send
from inspector.labels.worker import checked_printer, retry_in

ZPL = b"^XA\n^FO10,10^A0N,30,30^FB100,1,0,L,0^FH_^FDhi^FS\n^XZ\n"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("folder:/srv/labels", Printer("folder", "/srv/labels")),
        ("cups:Zebra_GK420", Printer("cups", "Zebra_GK420")),
        ("tcp:10.0.0.7:9100", Printer("tcp", "10.0.0.7", 9100)),
        ("tcp:[::1]:9100", Printer("tcp", "::1", 9100)),
        ("tcp:printer.local:6101", Printer("tcp", "printer.local", 6101)),
    ],
)
def test_a_printer_setting_names_one_printer(spec: str, expected: Printer) -> None:
    assert parse_printer(spec) == expected


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("/srv/labels", "expected folder:PATH"),
        ("folder:", "expected folder:PATH"),
        ("lpr:zebra", "unknown kind 'lpr'"),
        ("cups:my queue", "not a CUPS queue name"),
        ("tcp:10.0.0.7", "expected tcp:HOST:PORT"),
        ("tcp:10.0.0.7:0", "expected tcp:HOST:PORT"),
        ("tcp:10.0.0.7:99999", "expected tcp:HOST:PORT"),
    ],
)
def test_a_bad_printer_setting_says_what_is_expected(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_printer(spec)


def test_a_raw_port_takes_zpl_only() -> None:
    with pytest.raises(ValueError, match="raw ZPL only"):
        checked_printer(LabelsConfig(printer="tcp:127.0.0.1:9100", format="pdf"))
    assert checked_printer(LabelsConfig(printer="cups:q", format="pdf")) == Printer("cups", "q")
    assert checked_printer(LabelsConfig()) is None


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 10), (2, 20), (3, 40), (4, 80), (5, 80), (30, 80)])
def test_retries_back_off_to_eight_times_retry_s(attempts: int, seconds: float) -> None:
    assert retry_in(attempts, LabelsConfig(retry_s=10)).total_seconds() == seconds


# ------------------------------------------------------------------ folder


def test_the_folder_printer_writes_the_whole_file_and_nothing_else(tmp_path: Path) -> None:
    send(Printer("folder", str(tmp_path)), ZPL, name="a.zpl", raw=True, timeout_s=1)
    assert [p.name for p in tmp_path.iterdir()] == ["a.zpl"]
    assert (tmp_path / "a.zpl").read_bytes() == ZPL


def test_a_missing_folder_is_an_error_to_retry(tmp_path: Path) -> None:
    with pytest.raises(PrintError, match="does not exist"):
        send(Printer("folder", str(tmp_path / "gone")), ZPL, name="a.zpl", raw=True, timeout_s=1)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only folder")
def test_a_read_only_folder_leaves_no_partial_file(tmp_path: Path) -> None:
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(PrintError, match="cannot write"):
            send(Printer("folder", str(tmp_path)), ZPL, name="a.zpl", raw=True, timeout_s=1)
    finally:
        tmp_path.chmod(stat.S_IRWXU)
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------------- CUPS


@pytest.fixture
def fake_lp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``lp`` first on the PATH that records its arguments and input; LP_FAIL makes it refuse like CUPS."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    lp = bin_dir / "lp"
    lp.write_text(
        "#!/bin/sh\n"
        'if [ -n "$LP_FAIL" ]; then echo "lp: The printer or class does not exist." >&2; exit 1; fi\n'
        'if [ -n "$LP_HANG" ]; then exec sleep 5; fi\n'
        f'echo "$@" > {tmp_path}/args\n'
        f"cat > {tmp_path}/input\n"
        'echo "request id is q-1 (1 file(s))"\n'
    )
    lp.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


@pytest.mark.parametrize(("raw", "args"), [(True, "-d Zebra -t lbl -o raw"), (False, "-d Zebra -t lbl")])
def test_cups_gets_the_label_on_lp_s_input(fake_lp: Path, raw: bool, args: str) -> None:
    send(Printer("cups", "Zebra"), ZPL, name="lbl", raw=raw, timeout_s=5)
    assert (fake_lp / "args").read_text().strip() == args
    assert (fake_lp / "input").read_bytes() == ZPL


@pytest.mark.parametrize(
    ("env", "says"),
    [("LP_FAIL", "lp -d Zebra failed: lp: The printer or class does not exist."), ("LP_HANG", "did not answer within")],
)
def test_cups_refusing_or_hanging_is_an_error(
    fake_lp: Path, monkeypatch: pytest.MonkeyPatch, env: str, says: str
) -> None:
    monkeypatch.setenv(env, "1")
    with pytest.raises(PrintError, match=says):
        send(Printer("cups", "Zebra"), ZPL, name="lbl", raw=True, timeout_s=0.5)


def test_no_lp_installed_says_which_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrintError, match="cups-client"):
        send(Printer("cups", "Zebra"), ZPL, name="lbl", raw=True, timeout_s=1)


# --------------------------------------------------------------- raw TCP


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A port that accepts connections into its backlog and never reads (a printer that hangs)."""
    sock = socket.create_server(("127.0.0.1", 0), backlog=4)
    try:
        yield sock
    finally:
        sock.close()


def test_the_raw_port_gets_the_bytes_then_a_close() -> None:
    received: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as server:

        def printer() -> None:
            conn, _ = server.accept()
            with conn:
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
                received.append(data)

        thread = threading.Thread(target=printer)
        thread.start()
        send(Printer("tcp", "127.0.0.1", server.getsockname()[1]), ZPL, name="x", raw=True, timeout_s=5)
        thread.join(5)
    assert received == [ZPL]


def test_a_port_nobody_listens_on_is_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(PrintError, match="refused the connection"):
        send(Printer("tcp", "127.0.0.1", port), ZPL, name="x", raw=True, timeout_s=1)


def test_a_printer_that_never_reads_times_out(listener: socket.socket) -> None:
    with pytest.raises(PrintError, match=r"did not take the label within 0.3 s"):
        send(Printer("tcp", "127.0.0.1", listener.getsockname()[1]), ZPL, name="x", raw=True, timeout_s=0.3)
