"""The pixel budget: concurrent inspections never hold more decoded pixels than it allows."""

from __future__ import annotations

import asyncio

import pytest

from inspector.api.budget import PixelBudget
from inspector.api.problems import status_of
from inspector.errors import Busy


def test_holders_never_exceed_the_capacity_and_waiters_get_their_turn() -> None:
    budget = PixelBudget(100, wait_s=5)
    peak = 0
    order: list[str] = []

    async def inspect(name: str, pixels: int, seconds: float) -> None:
        nonlocal peak
        async with budget.hold(pixels):
            peak = max(peak, budget.in_use)
            order.append(name)
            await asyncio.sleep(seconds)

    async def main() -> None:
        await asyncio.gather(inspect("a", 60, 0.2), inspect("b", 60, 0.0), inspect("c", 30, 0.0))

    asyncio.run(main())
    assert peak <= 100 and budget.in_use == 0
    assert order[0] == "a" and set(order) == {"a", "b", "c"}


def test_a_waiter_past_its_time_gets_503_with_retry_after() -> None:
    budget = PixelBudget(100, wait_s=0.1)

    async def main() -> None:
        async with budget.hold(100):
            with pytest.raises(Busy) as err:
                async with budget.hold(1):
                    pass
            assert status_of(err.value) == 503 and err.value.code == "busy" and err.value.retry_after

    asyncio.run(main())
    assert budget.in_use == 0
