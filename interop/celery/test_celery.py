"""Celery against the broker: a real `celery worker` subprocess runs the tasks.

Every result wait has a deadline (RESULT_TIMEOUT); a failure shows the
worker's log.
"""

import pathlib

import pytest
from celery import chord, group, states
from celery.exceptions import TimeoutError as ResultTimeout

from support import Worker, ready_count, wait_until

RESULT_TIMEOUT = 30


def task(worker, name):
    return worker.app.tasks[f"interop.{name}"]


def get(worker, result, timeout=RESULT_TIMEOUT):
    try:
        return result.get(timeout=timeout)
    except ResultTimeout as e:
        raise AssertionError(f"no result within {timeout}s: {e!r}\n{worker.log_tail()}") from None


def test_task_returns_result(worker):
    result = task(worker, "add").delay(2, 3)
    assert get(worker, result) == 5
    assert result.state == states.SUCCESS


def test_task_exception_reaches_caller(worker):
    result = task(worker, "fail").delay("deliberate failure")
    with pytest.raises(ValueError, match="deliberate failure"):
        result.get(timeout=RESULT_TIMEOUT)
    assert result.state == states.FAILURE


def test_retry_then_success(worker):
    # Fails twice; each self.retry(countdown=0) republishes the task through
    # the broker; the third attempt succeeds.
    result = task(worker, "flaky").delay(2)
    assert get(worker, result) == {"attempts": 3, "retries": 2}


def test_group(worker):
    add = task(worker, "add")
    result = group(add.s(i, i) for i in range(10)).apply_async()
    assert get(worker, result) == [2 * i for i in range(10)]


def test_chain(worker):
    add = task(worker, "add")
    result = (add.s(1, 2) | add.s(3) | add.s(4)).apply_async()
    assert get(worker, result) == 10


def test_chord(file_worker):
    add, tsum = task(file_worker, "add"), task(file_worker, "tsum")
    result = chord(add.s(i, i) for i in range(6))(tsum.s())
    assert get(file_worker, result) == 30


@pytest.mark.parametrize("qos", ["auto", "global"])
def test_prefetch_limit(qos):
    """A worker with 2 processes and prefetch multiplier 1 holds 2 tasks.

    The tasks ack late and wait for a release file, so while they run the
    broker must keep the other 4 messages ready: that is basic.qos at work.
    "auto" leaves Celery's choice of basic.qos global (true when the broker
    says it is RabbitMQ 3.x); "global" forces global=true.
    """
    w = Worker("file", qos_global=(qos == "global"), concurrency=2)
    try:
        w.start()
        info = w.info()
        print(f"worker consumer settings: {info}")
        assert info["prefetch_count"] == 2
        if qos == "global":
            assert info["qos_global"] is True
        hold_dir = pathlib.Path(w.dir) / "hold"
        hold_dir.mkdir()
        hold = task(w, "hold")
        results = [hold.delay(str(hold_dir), f"t{i}") for i in range(6)]

        def started():
            return sorted(p.name for p in hold_dir.glob("started-*"))

        wait_until(lambda: len(started()) >= 2, RESULT_TIMEOUT, "two tasks to start")
        ready = ready_count(w.queue)
        running = started()
        assert len(running) == 2, f"{running} started with concurrency 2 and prefetch 2\n{w.log_tail()}"
        assert ready == 4, f"{ready} task messages ready while 2 are held (prefetch 2), want 4\n{w.log_tail()}"

        (hold_dir / "release").touch()
        assert sorted(get(w, r) for r in results) == [f"t{i}" for i in range(6)]
        assert len(started()) == 6
    finally:
        w.cleanup()
