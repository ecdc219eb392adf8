"""POST /v1/inspections/{id}/decision: the final decision, kept next to the recommendation."""

from __future__ import annotations

from typing import Any

import pytest

from inspector.api.schemas import DecisionIn
from tests.api.conftest import Api, jpeg

pytestmark = pytest.mark.api


def _decide(api: Api, iid: str, body: dict[str, Any], role: str = "operator") -> Any:
    return api.client.post(f"/v1/inspections/{iid}/decision", headers=api.h(role), json=body)


def test_decisions_are_an_audit_trail(api: Api) -> None:
    rec = api.inspect([jpeg(seed=3)], {"rma": "RMA-5", "category": "laptop"}).json()
    iid = rec["id"]

    accepted = _decide(api, iid, {"action": "accept"})
    assert accepted.status_code == 201, accepted.text
    a = accepted.json()
    assert a["final"] == {
        **a["final"],
        "grade": rec["grade"]["level"],
        "disposition": rec["disposition"]["path"],
        "decided": True,
        "actor": "test operator",
    }

    override = {
        "action": "override",
        "grade": "D",
        "disposition": "HARVEST_PARTS",
        "reason_code": "hidden_damage",
        "note": "screen cracked under the case",
        "actor": "Dana at bench 1",
    }
    o = _decide(api, iid, override, role="admin").json()
    assert [d["action"] for d in o["decisions"]] == ["accept", "override"]
    assert o["final"]["grade"] == "D" and o["final"]["disposition"] == "HARVEST_PARTS"
    assert o["final"]["actor"] == "Dana at bench 1"
    last = o["decisions"][-1]
    assert (last["reason_code"], last["note"], last["key_id"] is not None) == ("hidden_damage", override["note"], True)

    # Only a disposition: the grade stays the recommended one.
    only_disp = _decide(api, iid, {"action": "override", "disposition": "LIQUIDATE", "reason_code": "policy_exception"})
    assert only_disp.json()["final"]["grade"] == rec["grade"]["level"]

    # The recommendation itself is untouched, and every decision is a row of its own.
    got = api.client.get(f"/v1/inspections/{iid}", headers=api.h("wms")).json()
    for k in ("grade", "disposition", "views", "versions", "item", "created_at"):
        assert got[k] == rec[k]
    assert len(got["decisions"]) == 3
    assert got["final"]["disposition"] == "LIQUIDATE"
    rows = api.sql("SELECT action, grade, disposition FROM decisions WHERE inspection_id = :i ORDER BY seq", i=iid)
    assert rows == [
        ("accept", rec["grade"]["level"], rec["disposition"]["path"]),
        ("override", "D", "HARVEST_PARTS"),
        ("override", rec["grade"]["level"], "LIQUIDATE"),
    ]
    assert api.sql("SELECT grade FROM inspections WHERE id = :i", i=iid) == [(rec["grade"]["level"],)]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"action": "override", "grade": "B"}, "reason_code"),
        ({"action": "override", "reason_code": "other"}, "grade, disposition or both"),
        ({"action": "accept", "grade": "A"}, "accept takes the recommendation"),
        ({"action": "approve"}, "action"),
        ({"action": "override", "grade": "Z", "reason_code": "other"}, "grade"),
        ({"action": "override", "disposition": "SELL_ON_MARS", "reason_code": "other"}, "disposition"),
        ({"action": "override", "grade": "B", "reason_code": "Not A Code!"}, "reason_code"),
        ({"action": "accept", "surprise": 1}, "surprise"),
        ({}, "action"),
    ],
)
def test_bad_decisions_are_422(shared_api: Api, body: dict[str, Any], fragment: str) -> None:
    api = shared_api
    iid = api.inspect().json()["id"]
    r = _decide(api, iid, body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert fragment in r.json()["detail"]
    assert api.client.get(f"/v1/inspections/{iid}", headers=api.h("wms")).json()["decisions"] == []


def test_decision_on_a_missing_inspection_is_404(api: Api) -> None:
    r = _decide(api, "00000000-0000-4000-8000-000000000000", {"action": "accept"})
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_decision_body_that_is_not_json_is_422(api: Api) -> None:
    iid = api.inspect().json()["id"]
    r = api.client.post(
        f"/v1/inspections/{iid}/decision",
        headers=api.h("operator", **{"content-type": "application/json"}),
        content=b"{accept",
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


def test_the_station_service_decides_in_process(api: Api) -> None:
    iid = api.inspect().json()["id"]
    service = api.app.state.inspections

    async def run() -> dict[str, Any]:
        decision = DecisionIn.model_validate({"action": "override", "grade": "C", "reason_code": "missed_defect"})
        return await service.decide(iid, decision, "op-7", source="station")

    out = api.client.portal.call(run)
    assert out["final"]["grade"] == "C" and out["decisions"][0]["actor"] == "op-7"
    assert out["decisions"][0]["source"] == "station"
    assert api.client.get(f"/v1/inspections/{iid}", headers=api.h("wms")).json() == out
