"""Fixtures for the Celery and kombu interop tests.

``worker`` is parametrized over two result backends, so every Celery test runs
twice, each against a real worker subprocess of its own (started once per
session, stopped at the end):
  - ``rpc``: Celery's rpc:// backend; results travel back over the broker, to
    a queue per client process (no direct reply-to involved);
  - ``file``: a file-system backend, so that only the task path uses the broker.
Chords need a backend that stores results (the rpc backend refuses them), so
``file_worker`` is the file-backend worker alone.
"""

import pytest

from support import Worker

_workers = {}


def _get_worker(backend):
    w = _workers.get(backend)
    if w is None:
        # The file backend overwrites a task's result file on every state
        # change; with two pool processes, a retried task can finish in one
        # process while the other is still writing its RETRY state (a torn
        # or stale result file). One process keeps the states in order.
        w = Worker(backend, concurrency=1 if backend == "file" else 2)
        # Registered before start(): a worker that fails to start is cleaned up too.
        _workers[backend] = w
        w.start()
    elif w.proc is None or w.proc.poll() is not None:
        pytest.fail(f"the {backend} worker is not running (exit code {w.proc and w.proc.returncode})\n{w.log_tail()}")
    return w


@pytest.fixture(scope="session", autouse=True)
def _stop_workers():
    yield
    for w in _workers.values():
        w.cleanup()


@pytest.fixture(params=["rpc", "file"])
def worker(request):
    return _get_worker(request.param)


@pytest.fixture
def file_worker():
    return _get_worker("file")
