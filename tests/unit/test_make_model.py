"""``make model`` as a chain of stages: the plan, the progress file, resuming, the chain of versions.

Nothing here trains: ``train_version`` is replaced by a fake that only hands back a version name,
and renders by a function that names a folder per size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inspector.training.card import render_card
from inspector.training.default_model import (
    PLAN,
    main,
    plan_with,
    run_stages,
    stage_index,
    stage_recipes,
    training_render_dir,
)
from inspector.training.model_plan import (
    PROGRESS_FILE,
    ModelPlan,
    Progress,
    StageDone,
    first_unfinished,
    load_plan,
    load_progress,
    save_progress,
)
from inspector.training.recipe import Recipe
from inspector.training.run import TrainOutcome

NAMES = ["one", "two", "three"]


def _plan(*sizes: str) -> ModelPlan:
    """A plan of len(sizes) stages named after NAMES, one minute each."""
    stages = [{"recipe": f"{n}.yaml", "size": s, "minutes": 1.0} for n, s in zip(NAMES, sizes, strict=False)]
    return ModelPlan.model_validate({"training_data": {"images": 12}, "test_data": {"images": 6}, "stages": stages})


def _recipes(plan: ModelPlan) -> list[Recipe]:
    return [Recipe.model_validate({"name": NAMES[i], "init": "scratch"}) for i in range(len(plan.stages))]


def _progress(plan: ModelPlan, done: int) -> Progress:
    p = Progress.fresh(Path("plan.yaml"), plan)
    p.done = [
        StageDone(recipe=NAMES[i], size=s.size, version=f"{NAMES[i]}-v", budget_min=1.0, seconds=60.0, wall_seconds=61)
        for i, s in enumerate(plan.stages[:done])
    ]
    return p


class FakeTraining:
    """Stands in for ``train_version``: records each call, registers nothing, may stop at one stage."""

    def __init__(self, interrupt_at: str | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.interrupt_at = interrupt_at

    def __call__(self, data: Path, recipe: Recipe, **kw: Any) -> TrainOutcome:
        if recipe.name == self.interrupt_at:
            raise KeyboardInterrupt
        self.calls.append({"data": data, "name": recipe.name, "init": recipe.init, "version": kw.get("version")})
        version = kw.get("version") or f"{recipe.name}-v"
        return TrainOutcome(version=version, path=data, meta={"training": {"seconds": 42.0}}, run_dir=data)


def _run(
    monkeypatch: pytest.MonkeyPatch,
    tmp: Path,
    plan: ModelPlan,
    progress: Progress,
    *,
    stop: int,
    fake: FakeTraining,
) -> Path:
    monkeypatch.setattr("inspector.training.run.train_version", fake)
    path = tmp / PROGRESS_FILE
    run_stages(
        plan,
        _recipes(plan),
        progress,
        path,
        stop=stop,
        render=lambda stage: tmp / stage.size / "data.yaml",
        root=tmp,
        threads=1,
        name="last",
        notes=[],
    )
    return path


# ------------------------------------------------------------------ the plan


@pytest.mark.parametrize(
    ("plan_file", "last_size"), [(PLAN, (640, 480)), (PLAN.with_name("native-1280.plan.yaml"), (1280, 960))]
)
def test_the_shipped_plans_fit_the_three_hours_the_issue_allows(plan_file: Path, last_size: tuple[int, int]) -> None:
    plan = load_plan(plan_file)
    recipes = stage_recipes(plan_file, plan)
    assert [r.time_budget_min for r in recipes] == [s.minutes for s in plan.stages]  # the plan's budget wins
    # each stage also validates for about a minute at its end
    assert plan.budget_min + len(plan.stages) <= 180
    assert plan.stages[-1].wh == last_size


def test_the_default_plan_is_the_chain_of_the_served_model() -> None:
    """`make model` rebuilds what the station serves: the plan's recipes are the served version's stages."""
    from inspector import registry

    served = registry.load_meta(str(registry.active_version()))
    chain = [served["recipe"]["name"]]
    while len(chain) < 8 and (init := str(served.get("init", ""))).startswith("version "):
        served = registry.load_meta(init.split()[1])
        chain.insert(0, served["recipe"]["name"])
    assert [r.name for r in stage_recipes(PLAN, load_plan(PLAN))] == chain


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stages: [{recipe: a.yaml, minutes: 1}]\nbogus: 1\n", "bogus: Extra inputs are not permitted"),
        ("stages: [{recipe: a.yaml, minutes: 1, init: x}]\n", "stages.0.init: Extra inputs"),
        ("stages: [{recipe: a.yaml, minutes: 1}]\ntraining_data: {imgs: 3}\n", "training_data.imgs: Extra"),
        ("stages: [{recipe: a.yaml, minutes: 1, size: 640}]\n", "size must look like 640x480"),
        ("stages: [{recipe: a.yaml, minutes: 0}]\n", "stages.0.minutes"),
        ("stages: []\n", "stages: List should have at least 1 item"),
        ("stages: [{recipe: a.yaml, minutes: 1}, {recipe: a.yaml, minutes: 2}]\n", "one stage only"),
        ("[1, 2]\n", "a plan is a YAML mapping"),
    ],
)
def test_a_bad_plan_names_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.plan.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_plan(path)
    assert "p.plan.yaml" in str(err.value)


@pytest.mark.parametrize(
    ("minutes", "budgets"),
    [([], [1.0, 1.0, 1.0]), (["2=5"], [1.0, 5.0, 1.0]), (["three=0.5", "one=3"], [3.0, 1.0, 0.5])],
)
def test_stage_budgets_change_by_number_or_name(minutes: list[str], budgets: list[float]) -> None:
    plan = plan_with(_plan("640x480", "640x480", "1280x960"), NAMES, minutes, 20, None)
    assert [s.minutes for s in plan.stages] == budgets
    assert (plan.training_data.images, plan.test_data.images) == (20, 6)


@pytest.mark.parametrize(
    ("item", "message"), [("2", "STAGE=MINUTES"), ("2=0", "above 0"), ("2=x", "above 0"), ("four=1", "no stage")]
)
def test_bad_stage_budgets_are_refused(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_with(_plan("640x480", "640x480", "1280x960"), NAMES, [item], None, None)


@pytest.mark.parametrize(("text", "index"), [("1", 0), ("3", 2), ("two", 1)])
def test_a_stage_is_named_by_number_or_recipe(text: str, index: int) -> None:
    assert stage_index(text, NAMES) == index


@pytest.mark.parametrize("text", ["0", "4", "bench-det"])
def test_an_unknown_stage_lists_the_known_ones(text: str) -> None:
    with pytest.raises(ValueError, match="give 1 to 3 or one of one, two, three"):
        stage_index(text, NAMES)


def test_a_render_at_another_size_gets_its_own_folder(tmp_path: Path) -> None:
    from inspector.data.synth import DefectMix

    mix = DefectMix(0.15, (1, 2, 2, 3, 3, 4))
    assert training_render_dir(tmp_path, 3200, 1, mix, (640, 480)).name == "bench-s1-3200-df15-d122334"
    assert training_render_dir(tmp_path, 3200, 1, mix, (1280, 960)).name == "bench-s1-3200-df15-d122334-1280x960"


# ------------------------------------------------------------------ progress and resuming


@pytest.mark.parametrize("done", [0, 1, 3])
def test_resume_starts_at_the_first_stage_not_done(tmp_path: Path, done: int) -> None:
    plan = _plan("640x480", "640x480", "1280x960")
    path = tmp_path / PROGRESS_FILE
    save_progress(path, _progress(plan, done))
    progress = load_progress(path)
    assert progress is not None and [d.version for d in progress.done] == [f"{n}-v" for n in NAMES[:done]]
    assert first_unfinished(plan, NAMES, progress, path) == done


def test_no_progress_file_means_a_new_run(tmp_path: Path) -> None:
    assert load_progress(tmp_path / PROGRESS_FILE) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"plan": "p", "done": [', "not valid JSON"),
        ('{"plan": "p", "data": {}, "started_at": "x", "done": 3}', r"done: Input should be a valid list"),
        ('{"plan": "p", "data": {}, "started_at": "x", "extra": 1}', "extra: Extra inputs"),
        ("[]", "not a make-model progress file"),
    ],
)
def test_a_corrupt_progress_file_says_what_to_do(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / PROGRESS_FILE
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_progress(path)
    assert str(path) in str(err.value) and "--restart" in str(err.value)


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        (lambda p: _plan("640x480", "1280x960", "1280x960"), "stage 2 of the unfinished run is two at 640x480"),
        (lambda p: _plan("640x480"), "2 stages done, the plan only 1"),
        (lambda p: plan_with(p, NAMES, [], 99, None), "trained on other renders"),
    ],
)
def test_progress_of_another_plan_is_not_continued(tmp_path: Path, changed: Any, message: str) -> None:
    plan = _plan("640x480", "640x480", "1280x960")
    with pytest.raises(ValueError, match=message) as err:
        first_unfinished(changed(plan), NAMES, _progress(plan, 2), tmp_path / PROGRESS_FILE)
    assert "--restart" in str(err.value)


def test_main_stops_on_a_corrupt_progress_file_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("name: one\ninit: scratch\n")
    plan = tmp_path / "p.plan.yaml"
    plan.write_text("stages: [{recipe: one.yaml, minutes: 1}]\n")
    models = tmp_path / "models"
    models.mkdir()
    (models / PROGRESS_FILE).write_text("{half")
    args = ["--plan", str(plan), "--models-dir", str(models), "--datasets", str(tmp_path / "synth")]
    with pytest.raises(ValueError, match=r"not valid JSON.*--restart"):
        main(args)
    assert not (tmp_path / "synth").exists(), "nothing rendered"


# ------------------------------------------------------------------ the chain


def test_each_stage_starts_from_the_version_before_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plan = _plan("640x480", "640x480", "1280x960")
    fake = FakeTraining()
    path = _run(monkeypatch, tmp_path, plan, Progress.fresh(Path("p"), plan), stop=3, fake=fake)
    assert [c["init"] for c in fake.calls] == ["scratch", "one-v", "two-v"]
    assert [c["data"].parent.name for c in fake.calls] == ["640x480", "640x480", "1280x960"]
    assert [c["version"] for c in fake.calls] == [None, None, "last"]  # --name is the last stage's
    saved = load_progress(path)
    assert saved is not None
    assert [(d.recipe, d.size, d.version, d.seconds) for d in saved.done] == [
        ("one", "640x480", "one-v", 42.0),
        ("two", "640x480", "two-v", 42.0),
        ("three", "1280x960", "last", 42.0),
    ]


def test_a_resumed_run_trains_only_the_stages_left(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plan = _plan("640x480", "640x480", "1280x960")
    fake = FakeTraining()
    _run(monkeypatch, tmp_path, plan, _progress(plan, 2), stop=3, fake=fake)
    assert [(c["name"], c["init"]) for c in fake.calls] == [("three", "two-v")]


def test_a_stage_stopped_mid_way_is_trained_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plan = _plan("640x480", "640x480", "1280x960")
    with pytest.raises(KeyboardInterrupt):
        _run(monkeypatch, tmp_path, plan, Progress.fresh(Path("p"), plan), stop=3, fake=FakeTraining("two"))
    saved = load_progress(tmp_path / PROGRESS_FILE)
    assert saved is not None and [d.version for d in saved.done] == ["one-v"]
    assert first_unfinished(plan, NAMES, saved, tmp_path / PROGRESS_FILE) == 1
    fake = FakeTraining()
    _run(monkeypatch, tmp_path, plan, saved, stop=3, fake=fake)
    assert [(c["name"], c["init"]) for c in fake.calls] == [("two", "one-v"), ("three", "two-v")]


def test_until_stops_after_the_stage_asked_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plan = _plan("640x480", "640x480", "1280x960")
    fake = FakeTraining()
    path = _run(monkeypatch, tmp_path, plan, Progress.fresh(Path("p"), plan), stop=1, fake=fake)
    assert [c["name"] for c in fake.calls] == ["one"]
    assert json.loads(path.read_text())["done"][0]["version"] == "one-v"


# ------------------------------------------------------------------ the card


def test_the_card_lists_every_stage_and_the_total() -> None:
    stages = [
        {"stage": 1, "version": "a-1", "recipe": "a", "size": "640x480", "budget_min": 48, "seconds": 2900.0},
        {"stage": 2, "version": "b-1", "recipe": "b", "size": "1280x960", "budget_min": 20, "seconds": 1260.0},
    ]
    card = render_card({"version": "b-1", "training": {"seconds": 1260.0, "stages": stages, "total_minutes": 69.3}})
    assert "Trained in 2 stages" in card
    assert "| 2 | b-1 | b | 1280x960 | 20 min | 21.0 min |" in card
    assert "All stages together trained for 69.3 min of a 68-min budget." in card


def test_a_card_of_stages_recorded_before_sizes_were_still_renders() -> None:
    stages = [{"version": "a-1", "recipe": "a", "seconds": 60.0}, {"version": "b-1", "recipe": "b", "seconds": 30.0}]
    card = render_card({"version": "b-1", "training": {"seconds": 30.0, "stages": stages}})
    assert "| 1 | a-1 | a |  |  | 1.0 min |" in card and "trained for 1.5 min." in card
