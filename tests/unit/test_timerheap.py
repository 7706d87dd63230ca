"""The shell's single timer heap: order, replacement, cancellation, isolation of failures."""

from __future__ import annotations

import asyncio

from pyvrrpd.shell.timerheap import TimerHeap


def test_fires_in_deadline_order_never_early_and_rearms() -> None:
    fired: list[tuple[str, float, float]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        heap = TimerHeap(loop)
        t0 = loop.time()
        for key in ("a", "b", "c", "gone"):
            heap.register(key, lambda now, k=key: fired.append((k, now, loop.time())))
        heap.set("c", t0 + 0.06)
        heap.set("a", t0 + 0.02)
        heap.set("b", t0 + 0.5)
        heap.set("b", t0 + 0.04)  # replaced: fires once, at the new time
        heap.set("gone", t0 + 0.03)
        heap.set("gone", None)  # cancelled
        await asyncio.sleep(0.15)
        heap.close()
        for _, now, _ in fired:
            assert now >= t0

    asyncio.run(scenario())
    assert [k for k, _, _ in fired] == ["a", "b", "c"]


def test_a_failing_callback_does_not_stall_the_others() -> None:
    fired: list[str] = []
    errors: list[str] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _l, ctx: errors.append(ctx["message"]))
        heap = TimerHeap(loop)

        def boom(now: float) -> None:
            raise RuntimeError("bug")

        heap.register("bad", boom)
        heap.register("good", lambda now: fired.append("good"))
        heap.register("later", lambda now: fired.append("later"))
        t0 = loop.time()
        heap.set("bad", t0 + 0.01)
        heap.set("good", t0 + 0.01)
        heap.set("later", t0 + 0.05)
        await asyncio.sleep(0.1)
        heap.close()

    asyncio.run(scenario())
    assert fired == ["good", "later"]
    assert errors == ["timer callback for 'bad' failed"]
