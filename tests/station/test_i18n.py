"""The operator page in English and Vietnamese: the message catalogues, the server's side of them, and the page in
Chromium walked through its states in each language, where a string left untranslated fails the test.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from inspector.disposition import load_catalogue, load_policy, recommend
from inspector.grading import FamilyPrediction, assess_quality, grade_item, load_rubrics
from inspector.grading.rubric import GENERIC
from inspector.items import FAMILIES, ITEM_FLAGS, ItemInfo
from inspector.labelmap import default_labelmap
from inspector.types import Detections, DispositionPath, GradeLevel, Reason
from station.sources.synthetic import BenchSchedule
from station.trigger import TriggerState
from station.web import STATIC_DIR
from tests.station.server import LiveServer, drift_yesterday, readme_png, station_server
from tests.unit.grading_builders import at, bare, defect, view
from tests.unit.test_scenarios import SCENARIOS, build_view, picture

REPO = Path(__file__).resolve().parents[2]
CATALOGUES = STATIC_DIR / "i18n"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A slow first empty bench: the page is seen idle before the first item arrives.
SCHEDULE = BenchSchedule(empty_s=2.5, enter_s=0.4, still_s=1.6, leave_s=0.4)


def catalogue(lang: str) -> dict[str, str]:
    return json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))


EN, VI = catalogue("en"), catalogue("vi")


def page_sources() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(STATIC_DIR.glob("*")) if p.is_file()}


# ------------------------------------------------------------------------ catalogues


def test_the_catalogues_have_the_same_keys() -> None:
    assert sorted(EN) == sorted(VI), set(EN) ^ set(VI)


def test_each_message_has_the_same_placeholders_in_both_languages() -> None:
    differ = {
        k: (EN[k], VI.get(k))
        for k in EN
        if sorted(PLACEHOLDER.findall(EN[k])) != sorted(PLACEHOLDER.findall(VI.get(k, "")))
    }
    assert not differ, differ


def test_vietnamese_is_written_with_its_diacritics_and_not_copied_from_english() -> None:
    copied = [k for k in EN if EN[k] == VI[k]]
    assert not copied, f"the same in both languages: {copied}"
    # a sentence of Vietnamese without a single diacritic is English, or Vietnamese typed without its marks
    plain = [k for k, v in VI.items() if len(PLACEHOLDER.sub("", v).split()) >= 3 and v.isascii()]
    assert not plain, f"no diacritics: {plain}"


def test_every_key_the_page_names_is_in_the_catalogues() -> None:
    groups = {k.split(".")[0] for k in EN}
    named: set[str] = set()
    for name, text in page_sources().items():
        if name.endswith(".js"):  # every "group.name" string of a group the catalogues have
            found = re.findall(r"""["'`]([a-z_]+\.[a-z0-9_]+)["'`]""", text)
            named |= {k for k in found if k.split(".")[0] in groups}
        else:
            named |= set(re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', text))
    missing = sorted(k for k in named if k not in EN)
    assert named and not missing, missing


# Parts of the page that name their messages under their own prefix: say("looking") is "returns.looking".
PREFIXED = [("returns.js", "returns.")]


@pytest.mark.parametrize(("name", "prefix"), PREFIXED, ids=[f for f, _ in PREFIXED])
def test_the_messages_a_part_names_under_its_prefix_are_in_the_catalogues(name: str, prefix: str) -> None:
    text = page_sources()[name]
    named = {lit for args in re.findall(r"\bsay\(([^()]*)", text) for lit in re.findall(r'"([a-z_]+)"', args)}
    for listed in re.findall(r"\[([^\]]*)\]\.map\(\(k\) => [^;]*?say\(k\)", text):
        named |= set(re.findall(r'"([a-z_]+)"', listed))
    assert named
    assert not sorted(prefix + k for k in named if prefix + k not in EN)


# The names the server sends, which the page says through term(group, name): every one has its message.
TERMS: list[tuple[str, list[str]]] = [
    ("path", [p.value for p in DispositionPath]),
    ("grade", [g.value for g in GradeLevel if g.value not in "ABCD"]),
    ("defect", list(default_labelmap().names)),
    ("item_flag", sorted(ITEM_FLAGS)),
    ("category", [*FAMILIES, GENERIC]),
    ("trigger", [s.value for s in TriggerState]),
    ("zone", sorted({z.name for r in load_rubrics().rubrics.values() for z in r.zones})),
    (
        "override_reason",
        re.findall(r'"([a-z_]+)",', page_sources()["override.js"].split("const REASONS = [")[1].split("];")[0]),
    ),
]


@pytest.mark.parametrize(("group", "names"), TERMS, ids=[g for g, _ in TERMS])
def test_every_name_the_server_sends_has_a_message(group: str, names: list[str]) -> None:
    assert names
    missing = [n for n in names if f"{group}.{n}" not in EN]
    assert not missing, f"{group}: {missing}"


# --------------------------------------------------------------- reasons and notes


def scenario_reasons() -> tuple[list[Reason], list[str]]:
    """Every reason and alternative note of the realistic returns in tests/unit/data/scenarios.yaml."""
    rubric, policy, catalogue_ = load_rubrics(), load_policy(), load_catalogue()
    reasons: list[Reason] = []
    notes: list[str] = []
    for s in SCENARIOS:
        extra = {k: v for k, v in s.get("item", {}).items() if k != "flags"}
        item = ItemInfo(sku=s["sku"], flags=frozenset(s.get("item", {}).get("flags", [])), **extra)
        sku = catalogue_.resolve(s["sku"], item)
        qualities = [assess_quality(picture(kind, i), rubric.quality) for i, kind in enumerate(s.get("images", []))]
        family = FamilyPrediction(**s["family"]) if "family" in s else None
        views = [build_view(v) for v in s["views"]]
        grade = grade_item(views, rubric=rubric, sku=sku, item=item, qualities=qualities, family=family)
        decision = recommend(grade, sku=sku, item=item, policy=policy)
        reasons += [*grade.reasons, *decision.reasons]
        notes += [a.note for a in decision.alternatives if a.note]
    # detections the grader ignores, each for its own cause: faint, off the item, in a view without it, and a class
    # of another model's labelmap
    faint, off = defect("scratch", 0.5, 0.5, 0.01, conf=0.05), ("scratch", 0.9, (500.0, 20.0, 540.0, 60.0))
    first = view(faint, off)
    names = (*first.class_names, "mystery")
    mystery = Detections(
        xyxy=np.vstack([first.xyxy, np.array([at(0.5, 0.5, 0.01)], np.float32)]),
        confidence=np.append(first.confidence, np.float32(0.9)),
        class_id=np.append(first.class_id, len(names) - 1),
        class_names=names,
    )
    views = [mystery, bare(defect("dent", 0.5, 0.5, 0.01))]
    reasons += grade_item(views, rubric=rubric, sku=None, item=ItemInfo()).reasons
    return reasons, notes


REASONS, NOTES = scenario_reasons()
EXPLAIN = page_sources()["explain.js"]
# The codes the page says without params (from explain.js); every other reason must carry its figures.
WITHOUT_FIGURES = set(re.findall(r'"([a-z_:]+)"', EXPLAIN.split("const PLAIN = new Set([")[1].split("]")[0]))


def js_patterns(table: str) -> list[re.Pattern[str]]:
    """The regular expressions of one of explain.js's tables (plain enough to read the same in Python)."""
    body = EXPLAIN.split(f"const {table} = [")[1].split("\n];")[0]
    return [re.compile(p) for p in re.findall(r"\[/(\^.*?\$)/,", body)]


@pytest.mark.parametrize("code", sorted({r.code for r in REASONS}))
def test_each_reason_code_is_said_by_the_page_from_its_params(code: str) -> None:
    said = [r for r in REASONS if r.code == code]
    prefix = code.split(":")[0] + ":" if ":" in code else code
    assert re.search(rf'^\s+"?{re.escape(prefix)}"?: ', EXPLAIN, re.M), f"explain.js does not say {code}"
    for r in said:
        assert json.loads(json.dumps(r.to_dict()))["params"] == dict(r.params)
        if code not in WITHOUT_FIGURES:
            assert r.params, f"{code}: {r.text} has no params to say it with"


def test_the_names_in_reasons_have_messages() -> None:
    groups = {"defect": "defect", "zone": "zone", "path": "path", "next": "path", "flag": "item_flag"}
    missing = set()
    for r in REASONS:
        for param, group in groups.items():
            value = r.params.get(param)
            if isinstance(value, str) and f"{group}.{value}" not in EN:
                missing.add(f"{group}.{value}")
        for name in [*r.params.get("forbids", []), *r.params.get("flags", [])]:
            group = "path" if name in DispositionPath.__members__ else "item_flag"
            if f"{group}.{name}" not in EN:
                missing.add(f"{group}.{name}")
        for problem in r.params.get("problems", []):
            if f"quality.{problem.replace(' ', '_')}" not in EN:
                missing.add(f"quality.{problem}")
    assert not missing, sorted(missing)


@pytest.mark.parametrize(("table", "texts"), [("NOTES", "notes"), ("IGNORED", "ignored")])
def test_every_note_and_ignore_reason_is_translated(table: str, texts: str) -> None:
    patterns = js_patterns(table)
    if texts == "notes":
        parts = {part for note in NOTES for part in note.split("; ")}
    else:
        parts = {str(r.params["because"]) for r in REASONS if r.code == "ignored"}
    assert patterns and parts
    untranslated = sorted(p for p in parts if not any(rx.match(p) for rx in patterns))
    assert not untranslated, untranslated


# ---------------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = station_server(tmp_path_factory.mktemp("i18n"), schedule=SCHEDULE, fps=15.0, language="vi")
    try:
        yield live
    finally:
        live.stop()


def test_the_station_tells_the_page_its_language_and_currency(server: LiveServer) -> None:
    shell = httpx.get(server.url + "/", timeout=10).text
    assert '<html lang="vi">' in shell, "the page shell comes in the station's language, before any key"
    status = httpx.get(server.url + "/station/status", headers=server.h(), timeout=10).json()
    assert status["language"] == "vi"
    assert status["currency"] == load_policy().currency
    for lang in ("en", "vi"):
        r = httpx.get(f"{server.url}/static/i18n/{lang}.json", timeout=10)
        assert r.status_code == 200 and r.json() == catalogue(lang)


# -------------------------------------------------------------------------- Chromium

# Every visible text node, and the attributes meant for people, of the page as it is now. Text marked as another
# language (the language picker's own names) or as not to be translated (translate="no": ids, SKUs, the WMS's
# own words) is left out.
VISIBLE_TEXT = """() => {
  const out = [];
  const skipped = (el) => {
    const marked = el.closest("[lang]");
    return (marked && marked !== document.documentElement) || el.closest('[translate="no"]');
  };
  const seen = (el) => el.checkVisibility({ visibilityProperty: true });
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const text = node.textContent.trim();
    const el = node.parentElement;
    if (text && el && seen(el) && !skipped(el)) out.push(text);
  }
  for (const el of document.querySelectorAll("[placeholder], [title], [aria-label], [alt]")) {
    if (skipped(el) || !seen(el)) continue;
    for (const attr of ["placeholder", "title", "aria-label", "alt"]) {
      const v = el.getAttribute(attr);
      if (v && v.trim()) out.push(v.trim());
    }
  }
  out.push(document.title);
  return out;
}"""

# True invariants: codes, ids and names that read the same in every language.
INVARIANT = re.compile(r"^(RMA|LPN|SKU|Enter|Esc|Ctrl|fps|px|MB|OK|[A-D]|[A-Z]+-[\w-]+|[\w.-]*\d[\w.-]*)$")


def english_templates() -> tuple[set[str], list[re.Pattern[str]]]:
    """The English messages as they show: plain ones as they are, templated ones as patterns."""
    plain = {v for v in EN.values() if not PLACEHOLDER.search(v)}
    patterns = []
    for v in EN.values():
        literal = PLACEHOLDER.sub("", v)
        if PLACEHOLDER.search(v) and len(re.findall(r"[A-Za-z]", literal)) >= 4:
            parts = PLACEHOLDER.split(v)[::2]
            patterns.append(re.compile("^" + "(.+?)".join(re.escape(p) for p in parts) + "$"))
    return plain, patterns


def english_words() -> set[str]:
    """Words of the English catalogue that the Vietnamese one never uses (so never Vietnamese, nor a code)."""

    def words(values: Any) -> set[str]:
        return {w.lower() for v in values for w in re.findall(r"[A-Za-z]{4,}", PLACEHOLDER.sub(" ", v))}

    return words(EN.values()) - words(VI.values())


def untranslated(texts: list[str]) -> list[str]:
    """What shows in English on a page that should be in Vietnamese."""
    plain, patterns = english_templates()
    words = english_words()
    bad = []
    for text in dict.fromkeys(texts):
        if INVARIANT.match(text):
            continue
        if text in plain or any(p.match(text) for p in patterns):
            bad.append(text)
        elif english := sorted({w for w in re.findall(r"[A-Za-z]{4,}", text) if w.lower() in words}):
            bad.append(f"{text}  <- {', '.join(english)}")
    return bad


def raw_keys(texts: list[str]) -> list[str]:
    """What shows as a key or an unfilled {placeholder} instead of a message."""
    key = re.compile(r"[a-z_]+\.[a-z0-9_.]+")
    return [t for t in dict.fromkeys(texts) if t in EN or PLACEHOLDER.search(t) or key.fullmatch(t)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from tests.station import test_browser as tb  # skips the browser tests when Chromium or Playwright is missing

    with tb.sync_playwright() as p:
        b = p.chromium.launch(executable_path=tb.CHROMIUM, args=tb.CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


DRIFTED: set[str] = set()


def add_drift(server: LiveServer) -> None:
    """The drift banner, once per server (the injected inspections have fixed ids)."""
    if server.url not in DRIFTED:
        DRIFTED.add(server.url)
        drift_yesterday(server)


class Walk:
    """The page through its states, collecting what it shows in each."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.seen: dict[str, list[str]] = {}

    def look(self, state: str) -> None:
        self.seen[state] = self.page.evaluate(VISIBLE_TEXT)

    def keys(self, keys: list[str], done: str, attempts: int = 5) -> None:
        """Keys as an operator presses them: again if a new result landed in between."""
        for _ in range(attempts):
            self.page.wait_for_timeout(450)
            for key in keys:
                self.page.keyboard.press(key)
            try:
                self.page.wait_for_function(done, timeout=3000, polling=50)
                return
            except Exception:  # Playwright's timeout: try again
                self.page.keyboard.press("Escape")
        raise AssertionError(f"{keys} did not lead to {done}")

    def all(self) -> list[str]:
        return [t for texts in self.seen.values() for t in texts]


def walk(page: Any, server: LiveServer, lang: str, shoot: bool = False) -> Walk:
    """The key prompt, idle, an inspection with its reasons and alternatives, the override's reason codes, a
    missed-defect flag, an accepted and an overridden decision, the history and a banner, in ``lang``.

    The station's language is Vietnamese: for English, the operator presses T once the key is in.
    """
    w = Walk(page)
    page.goto(server.url + "/")
    page.wait_for_selector("#key-dialog[open]")
    page.wait_for_function("() => document.documentElement.lang === 'vi' && document.title !== ''")
    page.keyboard.type(server.keys["operator"])
    page.keyboard.press("Enter")
    page.wait_for_function("() => !document.querySelector('#key-dialog').open", timeout=10_000)
    if lang != "vi":
        page.keyboard.press("t")
        page.wait_for_function(f"() => document.documentElement.lang === '{lang}'", timeout=10_000)
    page.keyboard.press("Control+k")
    page.wait_for_selector("#key-dialog[open]")
    w.look("key prompt")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('#key-dialog').open", timeout=10_000)
    page.wait_for_function("() => document.querySelector('#pill-model').className.includes('ok')", timeout=10_000)
    w.look("idle")
    page.wait_for_function("() => document.querySelectorAll('#reasons li').length > 1", timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('#history-list button').length > 0", timeout=10_000)
    w.look("inspection")
    w.keys(["1"], "() => document.querySelector('#override-options li[data-code]') !== null")
    w.look("override reason codes")
    page.keyboard.press("Escape")
    w.keys(["m"], "() => !document.querySelector('#flag').hidden")
    w.look("missed defect")
    page.keyboard.press("Escape")
    w.keys(["Enter"], "() => document.querySelector('#decision').className.includes('accepted')")
    w.look("accepted")
    w.keys(["1", "2"], "() => document.querySelector('#decision').className.includes('overridden')")
    w.look("overridden")
    page.keyboard.press("h")
    w.look("history")
    page.keyboard.press("Escape")
    if shoot:
        screenshots(page, server)
    add_drift(server)
    page.wait_for_selector("#banners .banner.drift", timeout=20_000)
    w.look("banner")
    return w


def screenshots(page: Any, server: LiveServer) -> None:
    """docs/station-en.png and station-vi.png for the README, of an item its expected return gave a value to:
    refreshed when missing or with INSPECTOR_SCREENSHOTS=1 (so a test run leaves docs/ alone)."""
    targets = {lang: REPO / "docs" / f"station-{lang}.png" for lang in ("vi", "en")}
    if all(t.exists() for t in targets.values()) and os.environ.get("INSPECTOR_SCREENSHOTS") != "1":
        return
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:  # the demo's expected returns price most items: wait for one
        shown = page.evaluate("() => document.body.dataset.shownId")
        body = httpx.get(f"{server.url}/v1/inspections/{shown}", headers=server.h(), timeout=10).json()
        if body["disposition"]["path"] != "MANUAL_REVIEW" and not body["final"]["decided"]:
            break
        page.wait_for_timeout(500)
    page.wait_for_timeout(500)  # its views drawn
    page.evaluate("() => window.scrollTo(0, 0)")
    for lang in ("vi", "en"):  # T switches, twice: the page is back in Vietnamese after
        page.wait_for_function(f"() => document.documentElement.lang === '{lang}'", timeout=10_000)
        page.wait_for_timeout(300)
        readme_png(page, targets[lang])
        page.keyboard.press("t")
    page.wait_for_function("() => document.documentElement.lang === 'vi'", timeout=10_000)


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.mark.browser
def test_in_vietnamese_nothing_on_the_page_is_left_in_english(context: Any, server: LiveServer) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    w = walk(page, server, "vi", shoot=True)
    left = {state: untranslated(texts) for state, texts in w.seen.items()}
    assert not any(left.values()), json.dumps({k: v for k, v in left.items() if v}, ensure_ascii=False, indent=1)
    assert not raw_keys(w.all())
    assert "Xem xét thủ công" in w.all() or any(VI[f"path.{p.value}"] in w.all() for p in DispositionPath)
    assert not errors


# Fails about one run in four (the English walk after T times out); in `make test-all` until the race is found.
@pytest.mark.slow
@pytest.mark.browser
def test_in_english_no_message_is_a_raw_key_and_the_operator_switch_is_kept(context: Any, server: LiveServer) -> None:
    page = context.new_page()
    w = walk(page, server, "en")
    assert not raw_keys(w.all()), raw_keys(w.all())
    vietnamese = {v for v in VI.values() if not PLACEHOLDER.search(v)}
    assert not [t for t in w.all() if t in vietnamese]
    assert EN["result.why"] in w.seen["inspection"] and EN["pill.model_ready"] in w.seen["idle"]
    # the operator's choice is kept on this browser, whatever the station's language
    assert page.evaluate("() => localStorage.getItem('inspector.language')") == "en"
    page.reload()
    page.wait_for_function("() => document.documentElement.lang === 'en' && document.title === 'Inspection station'")
    assert page.evaluate("() => document.querySelector('#language').value") == "en"


@pytest.mark.browser
def test_a_translation_removed_from_the_catalogue_fails_the_check(context: Any, server: LiveServer) -> None:
    """The check above is not vacuous: with "Why" missing from Vietnamese, the page shows it in English."""
    broken = {k: v for k, v in VI.items() if k != "result.why"}
    page = context.new_page()
    page.route("**/static/i18n/vi.json", lambda route: route.fulfill(json=broken))
    page.goto(server.url + "/")
    page.wait_for_selector("#key-dialog[open]")
    page.keyboard.type(server.keys["operator"])
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#reasons li').length > 1", timeout=30_000)
    assert untranslated(page.evaluate(VISIBLE_TEXT)) == [EN["result.why"]]
