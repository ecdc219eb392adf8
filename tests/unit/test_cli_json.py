"""A scriptable command line: every verb that lists or shows takes --json and prints one parseable document,
and piped listings keep every id whole."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from inspector import registry
from inspector.cli import app
from tests.builders import tiny_yolo_dataset


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A station data folder with a key, an expected return, a catalogue file and a tiny dataset."""
    base = tmp_path_factory.mktemp("cli-json")
    data = ["--data-dir", str(base / "data")]
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "--role", "operator", "--name", "a scripted bench", *data])
    assert made.exit_code == 0, made.output
    (base / "returns.csv").write_text("rma,line,sku,price\nRMA-J-1,1,J-1,12.5\n", encoding="utf-8")
    imported = runner.invoke(app, ["returns", "import", str(base / "returns.csv"), *data])
    assert imported.exit_code == 0, imported.output
    (base / "catalogue.csv").write_text("sku,category,price_new\nJ-1,phone,120\nJ-2,garden/tools,9\n", "utf-8")
    tiny_yolo_dataset(base / "ds", n_train=3, n_val=2, size=32)
    return base


def _version() -> str:
    return registry.list_versions(registry.root_dir(None))[0]


# each verb that lists or shows, with what it needs from the bench folder; the check is what the JSON must hold
VERBS: list[tuple[str, Callable[[Path], list[str]], Callable[[Any], Any]]] = [
    ("models list", lambda b: ["models", "list"], lambda d: bool(d["versions"])),
    ("models show", lambda b: ["models", "show", _version()], lambda d: d["version"] == _version()),
    (
        "keys list",
        lambda b: ["keys", "list", "--data-dir", str(b / "data")],
        lambda d: "a scripted bench" in {k["name"] for k in d},
    ),
    ("db current", lambda b: ["db", "current", "--data-dir", str(b / "data")], lambda d: bool(d["revision"])),
    ("returns show", lambda b: ["returns", "show", "RMA-J-1", "--data-dir", str(b / "data")], lambda d: d["lines"]),
    (
        "feedback drift",
        lambda b: ["feedback", "drift", "--data-dir", str(b / "data")],
        lambda d: d["warnings"] == [],
    ),
    (
        "feedback sample",
        lambda b: ["feedback", "sample", "--data-dir", str(b / "data")],
        lambda d: d["views"] == [],
    ),
    (
        "catalogue show",
        lambda b: ["catalogue", "show", "J-1", "--catalogue", str(b / "catalogue.csv")],
        lambda d: d["sku"] == "J-1",
    ),
    (
        "catalogue validate",
        lambda b: ["catalogue", "validate", str(b / "catalogue.csv")],
        lambda d: d["ok"] and d["skus"] == 2 and d["categories"] == {"phone": 1, "garden/tools": 1},
    ),
    (
        "data stats",
        lambda b: ["data", "stats", str(b / "ds"), "--mosaic", str(b / "m.png")],
        lambda d: d["images"] == 5,
    ),
    ("data validate", lambda b: ["data", "validate", str(b / "ds")], lambda d: d["images"] == 5),
]


@pytest.mark.parametrize(("verb", "args", "holds"), VERBS, ids=[v[0] for v in VERBS])
def test_every_list_and_show_verb_prints_parseable_json(
    bench: Path, verb: str, args: Callable[[Path], list[str]], holds: Callable[[Any], Any]
) -> None:
    r = CliRunner().invoke(app, [*args(bench), "--json"])
    assert r.exit_code == 0, f"{verb}: {r.output}"
    doc = json.loads(r.stdout)
    assert holds(doc), doc


def test_a_refused_catalogue_is_a_json_report_with_every_bad_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,category,price_new\nJ-1,phone,abc\nJ-2,phone,3\nJ-3,phone,xyz\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["catalogue", "validate", str(bad), "--json"])
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["file"] == str(bad)
    assert [(e["where"], e["column"]) for e in doc["errors"]] == [
        (f"{bad} line 2", "price_new"),
        (f"{bad} line 4", "price_new"),
    ]


def test_piped_keys_list_at_80_columns_keeps_every_id_and_name_whole(bench: Path) -> None:
    """`inspector keys list | cat` in an 80-column terminal: ids and long names arrive whole, as --json lists them."""
    data = ["--data-dir", str(bench / "data")]
    long_name = "the returns bench at the far end of aisle fourteen, second shift"
    made = CliRunner().invoke(app, ["keys", "create", "--role", "wms", "--name", long_name, *data])
    assert made.exit_code == 0, made.output
    env = {**os.environ, "COLUMNS": "80"}
    piped = subprocess.run(
        [sys.executable, "-m", "inspector", "keys", "list", *data], capture_output=True, text=True, timeout=60, env=env
    )
    assert piped.returncode == 0, piped.stderr
    keys = json.loads(CliRunner().invoke(app, ["keys", "list", "--json", *data]).stdout)
    lines = piped.stdout.splitlines()
    for key in keys:
        assert any(key["id"] in ln and ln.endswith(key["name"]) for ln in lines), (key, piped.stdout)
