"""The Celery app and tasks of the interop suite.

The worker subprocess loads this module with ``celery -A interop_tasks worker``
and builds its app from the environment:

  AMQP_URL                  broker
  INTEROP_RESULT_BACKEND    result backend URL (``rpc://`` or ``file:///...``)
  INTEROP_TASK_QUEUE        the queue (and direct exchange) tasks are sent to;
                            unique per worker, so suites can share a broker
  INTEROP_QOS_GLOBAL        "1": force basic.qos global=true for the task
                            consumer, whatever Celery would choose for this
                            broker (see test_celery.py::test_prefetch_limit)
  INTEROP_WORKER_INFO       file the worker writes, once ready, with the QoS
                            mode and prefetch count its task consumer uses

The tests build the same app in-process with make_app(...).
"""

import json
import os
import pathlib
import time

from celery import Celery, signals

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def make_app(broker_url, backend_url, task_queue):
    app = Celery("interop_tasks", broker=broker_url, backend=backend_url)
    app.conf.update(
        task_default_queue=task_queue,
        task_default_exchange=task_queue,
        task_default_routing_key=task_queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # One unacknowledged task per pool process: the prefetch test relies on it.
        worker_prefetch_multiplier=1,
        # Fail fast instead of retrying forever when the broker is unreachable.
        broker_connection_retry_on_startup=False,
        broker_connection_timeout=10,
        broker_connection_max_retries=3,
        result_persistent=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    register_tasks(app)
    return app


def register_tasks(app):
    @app.task(shared=False, name="interop.add")
    def add(x, y):
        return x + y

    @app.task(shared=False, name="interop.tsum")
    def tsum(numbers):
        return sum(numbers)

    @app.task(shared=False, name="interop.fail")
    def fail(message):
        raise ValueError(message)

    @app.task(shared=False, name="interop.flaky", bind=True, max_retries=5)
    def flaky(self, failures):
        """Fails `failures` times (each time retried at once), then succeeds."""
        attempt = self.request.retries + 1
        if self.request.retries < failures:
            raise self.retry(countdown=0, exc=RuntimeError(f"attempt {attempt} failed"))
        return {"attempts": attempt, "retries": self.request.retries}

    @app.task(shared=False, name="interop.hold", acks_late=True)
    def hold(directory, name, timeout=60.0):
        """Marks itself started, then waits (bounded) for the release file.

        acks_late: the task message stays unacknowledged while it runs, so the
        broker's prefetch limit is what bounds how many run or wait at once.
        """
        d = pathlib.Path(directory)
        (d / f"started-{name}").touch()
        deadline = time.monotonic() + timeout
        while not (d / "release").exists():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{name}: not released within {timeout}s")
            time.sleep(0.02)
        return name


if os.environ.get("INTEROP_QOS_GLOBAL") == "1":
    # Celery decides basic.qos global from the server's product name (true
    # for RabbitMQ 3.x only); force it, to prove a broker's global prefetch.
    from celery.worker.consumer.tasks import Tasks

    Tasks.qos_global = lambda self, c: True


@signals.worker_ready.connect
def _report_consumer_settings(sender=None, **kwargs):
    info_path = os.environ.get("INTEROP_WORKER_INFO")
    if not info_path or sender is None:
        return
    server = sender.connection.connection.server_properties
    info = {
        "qos_global": getattr(sender, "qos_global", None),
        "prefetch_count": sender.initial_prefetch_count,
        "server_product": str(server.get("product", "")),
    }
    tmp = info_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(info, f)
    os.replace(tmp, info_path)


app = make_app(
    os.environ.get("AMQP_URL", DEFAULT_URL),
    os.environ.get("INTEROP_RESULT_BACKEND", "rpc://"),
    os.environ.get("INTEROP_TASK_QUEUE", "interop.celery.tasks"),
)
