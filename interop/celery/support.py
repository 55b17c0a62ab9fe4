"""Helpers for the Celery/kombu interop tests: a real worker subprocess.

A Worker is a `celery worker` process (prefork pool) of its own, with its own
task queue, node name and result backend, started against $AMQP_URL. It is
ready once it answers a ping addressed to its node name (pidbox broadcast and
reply over the broker), and it is always stopped: SIGTERM to its process
group, then SIGKILL if it has not exited within a deadline.
"""

import contextlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import kombu

from interop_tasks import make_app

HERE = pathlib.Path(__file__).resolve().parent
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def wait_until(predicate, timeout, what, poll=0.02):
    """Polls predicate() until it is true; AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def kombu_connection(**kwargs):
    return kombu.Connection(AMQP_URL, connect_timeout=10, **kwargs)


def ready_count(queue_name):
    """Ready (not unacknowledged) messages in a queue, by passive declare."""
    with kombu_connection() as conn:
        channel = conn.channel()
        try:
            return channel.queue_declare(queue=queue_name, passive=True).message_count
        finally:
            channel.close()


def delete_quietly(queues=(), exchanges=()):
    """Deletes queues and exchanges, one channel each (a failure closes it)."""
    try:
        with kombu_connection() as conn:
            for q in queues:
                with contextlib.suppress(Exception):
                    ch = conn.channel()
                    ch.queue_delete(queue=q)
                    ch.close()
            for x in exchanges:
                with contextlib.suppress(Exception):
                    ch = conn.channel()
                    ch.exchange_delete(exchange=x)
                    ch.close()
    except Exception as e:  # noqa: BLE001 - best effort at teardown
        print(f"cleanup failed: {e!r}", file=sys.stderr)


class Worker:
    """One `celery worker` subprocess and a client app configured like it."""

    def __init__(self, backend, qos_global=False, concurrency=2):
        self.run_id = uuid.uuid4().hex[:10]
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"interop-celery-{self.run_id}-"))
        self.queue = f"interop.celery.{self.run_id}.tasks"
        self.nodename = f"interop-{self.run_id}@localhost"
        self.log_path = self.dir / "worker.log"
        self.info_path = self.dir / "worker-info.json"
        if backend == "rpc":
            self.backend_url = "rpc://"
        elif backend == "file":
            results = self.dir / "results"
            results.mkdir()
            self.backend_url = f"file://{results}"
        else:
            raise ValueError(backend)
        self.backend = backend
        self.qos_global = qos_global
        self.concurrency = concurrency
        self.proc = None
        self._log = None
        self.app = make_app(AMQP_URL, self.backend_url, self.queue)

    # -------------------------------------------------------------- process

    def start(self):
        env = dict(os.environ)
        env.update(
            AMQP_URL=AMQP_URL,
            INTEROP_RESULT_BACKEND=self.backend_url,
            INTEROP_TASK_QUEUE=self.queue,
            INTEROP_WORKER_INFO=str(self.info_path),
            INTEROP_QOS_GLOBAL="1" if self.qos_global else "0",
            PYTHONPATH=str(HERE),
            PYTHONUNBUFFERED="1",
        )
        cmd = [
            sys.executable, "-m", "celery", "-A", "interop_tasks", "worker",
            "--pool=prefork", f"--concurrency={self.concurrency}",
            f"--hostname={self.nodename}", f"--queues={self.queue}",
            "--loglevel=INFO", "--without-mingle",
        ]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=HERE, env=env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill the pool with it
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self):
        """Waits (bounded) until the worker answers a ping to its node name."""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"celery worker exited with code {self.proc.returncode} before it was ready\n{self.log_tail()}")
            try:
                replies = self.app.control.ping(destination=[self.nodename], timeout=0.5)
            except Exception as e:  # noqa: BLE001 - broker hiccup: retried until the deadline
                replies, last_error = [], e
            else:
                last_error = None
            if any(self.nodename in r for r in replies):
                break
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"celery worker {self.nodename} did not answer a ping within {READY_TIMEOUT}s"
                    f" (last error: {last_error!r})\n{self.log_tail()}")
        # The consumer settings file is written on worker_ready, which
        # precedes the pidbox answering, but allow for it anyway.
        wait_until(self.info_path.exists, 10, "the worker's consumer settings")

    def info(self):
        return json.loads(self.info_path.read_text())

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # warm shutdown
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"celery worker {self.nodename} ignored SIGTERM for {STOP_TIMEOUT}s: killing it",
                      file=sys.stderr)
            # Pool children left behind (or a worker that hung) are killed.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=STOP_TIMEOUT)
        elif self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self._log:
            self._log.close()
            self._log = None
        with contextlib.suppress(Exception):
            self.app.close()

    def cleanup(self):
        """Stops the worker and deletes its queue and exchange."""
        self.stop()
        delete_quietly(queues=[self.queue], exchanges=[self.queue])
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines=80):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no worker log)"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"----- worker log ({self.log_path}) -----\n{tail}\n----- end of worker log -----"
