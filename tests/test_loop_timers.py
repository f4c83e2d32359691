"""The loop's timer heap: order, cancellation, and the wait timeout."""

from askr.uring.timers import Timers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_timers_fire_in_deadline_order_once():
    clock = Clock()
    timers = Timers(clock)
    fired = []
    timers.add(0.3, lambda: fired.append("c"))
    timers.add(0.1, lambda: fired.append("a"))
    timers.add(0.2, lambda: fired.append("b"))

    assert timers.run_due() == 0
    clock.now += 0.25
    assert timers.run_due() == 2
    assert fired == ["a", "b"]
    clock.now += 1
    assert timers.run_due() == 1
    assert timers.run_due() == 0
    assert fired == ["a", "b", "c"]
    assert len(timers) == 0


def test_cancelled_timer_never_fires_and_frees_the_timeout():
    clock = Clock()
    timers = Timers(clock)
    fired = []
    early = timers.add(0.1, lambda: fired.append("early"))
    timers.add(5.0, lambda: fired.append("late"))

    assert abs(timers.next_timeout() - 0.1) < 1e-9
    timers.cancel(early)
    timers.cancel(early)  # twice is harmless
    assert len(timers) == 1
    assert abs(timers.next_timeout() - 5.0) < 1e-9

    clock.now += 1
    assert timers.run_due() == 0
    assert fired == []


def test_next_timeout_is_capped_by_limit_and_none_without_timers():
    clock = Clock()
    timers = Timers(clock)
    assert timers.next_timeout() is None
    assert timers.next_timeout(2.0) == 2.0

    timers.add(3.0, lambda: None)
    assert timers.next_timeout(2.0) == 2.0
    clock.now += 10
    assert timers.next_timeout() == 0.0


def test_callback_adding_a_due_timer_does_not_loop_forever():
    clock = Clock()
    timers = Timers(clock)
    runs = []

    def again():
        runs.append(1)
        timers.add(0, again)

    timers.add(0, again)
    assert timers.run_due() == 1
    assert timers.run_due() == 1
    assert len(runs) == 2


def test_many_cancellations_keep_the_heap_small():
    clock = Clock()
    timers = Timers(clock)
    keep = timers.add(60, lambda: None)
    for _ in range(10_000):
        timers.cancel(timers.add(30, lambda: None))
    assert len(timers) == 1
    assert len(timers._heap) < 200
    assert timers.next_timeout() == 60
    timers.cancel(keep)
    assert timers.next_timeout() is None
