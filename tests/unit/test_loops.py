"""Background loops never die (shared/loops.py) and stalled messages are noticed (shared/stalls.py)."""

import asyncio
from types import SimpleNamespace

from shared import metrics
from shared.loops import Loop, overdue
from shared.stalls import Held
from tests.support.stack import eventually


def errors(name: str) -> float:
    return metrics.BACKGROUND_ERRORS.labels(name)._value.get()


async def test_a_cycle_that_raises_is_counted_backed_off_and_run_again() -> None:
    calls: list[int] = []

    async def cycle() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise KeyError("a bug")  # not a connection error: it used to end the loop for good

    before = errors("unit_flaky")
    loop = Loop("unit_flaky", cycle, every=0.01, deadline=5, backoff=(0.01, 0.05))
    task = asyncio.create_task(loop.run())
    try:
        await eventually(lambda: len(calls) >= 5, 5, what="the loop to go on after two failures")
        assert errors("unit_flaky") == before + 2
        assert loop.failures == 0  # reset by the cycle that ended well
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_cycle_past_its_deadline_is_overdue_until_it_ends() -> None:
    release = asyncio.Event()

    async def stuck() -> None:
        await release.wait()

    loop = Loop("unit_stuck", stuck, every=10, deadline=0.05)
    task = asyncio.create_task(loop.run())
    try:
        await eventually(lambda: overdue([loop]), 5, what="the stuck cycle to be overdue")
        assert "unit_stuck" in overdue([loop])[0]
        release.set()
        await eventually(lambda: not overdue([loop]), 5, what="the loop to be on time again")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_cancelling_a_loop_stops_it() -> None:
    """Cancelled mid-cycle (a CancelledError is no failure to retry): the loop ends."""
    running = asyncio.Event()

    async def long_cycle() -> None:
        running.set()
        await asyncio.sleep(3600)

    loop = Loop("unit_cancel", long_cycle, every=0, deadline=5, backoff=(0.01, 0.01))
    task = asyncio.create_task(loop.run())
    await asyncio.wait_for(running.wait(), 5)
    task.cancel()
    results = await asyncio.gather(task, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError) and errors("unit_cancel") == 0


async def test_stop_waits_for_the_cycle_to_unwind_but_not_for_ever() -> None:
    """A cycle whose cleanup hangs (a close the broker never answers) does not keep its process from stopping."""
    running, unwound, hanging, released = asyncio.Event(), asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def polite() -> None:
        running.set()
        try:
            await asyncio.sleep(3600)
        finally:
            unwound.set()

    async def stubborn() -> None:
        running.set()
        try:
            await asyncio.sleep(3600)
        finally:
            hanging.set()
            await released.wait()  # a close that does not end (until the test lets it, not to outlive it)

    first = Loop("unit_polite", polite, every=0, deadline=5)
    first.start()
    await asyncio.wait_for(running.wait(), 5)
    await first.stop()
    assert unwound.is_set()
    second = Loop("unit_stubborn", stubborn, every=0, deadline=5)
    running.clear()
    second.start()
    await asyncio.wait_for(running.wait(), 5)
    started = asyncio.get_running_loop().time()
    await second.stop(within=0.2)
    assert hanging.is_set() and asyncio.get_running_loop().time() - started < 5
    released.set()


def test_a_message_held_past_its_deadline_is_counted_and_said() -> None:
    held = Held(deadline=0.0)
    raw = SimpleNamespace(message_id={"odd": "id"}, routing_key="leads.create")
    with held.holding(raw):
        held.check()
        assert metrics.STALLED._value.get() == 1
        (reason,) = held.reasons()
        assert "held past" in reason and "leads.create" in reason
    held.check()
    assert metrics.STALLED._value.get() == 0 and held.reasons() == []
