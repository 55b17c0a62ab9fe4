"""Helpers shared by the management interop tests (fixtures are in conftest.py).

The broker is reached three ways, each from the environment interop/run exports:
  - AMQP_URL: pika, to make the queues, messages, consumers and connections the tools
    are then asked about;
  - MANAGEMENT_URL (http://host:port, no /api): the management HTTP API;
  - PROMETHEUS_URL (http://host:port): the Prometheus endpoint (/metrics, /metrics/per-object).
Empty or unset, the last two default to RabbitMQ's plugin ports on 127.0.0.1.
"""

import os
import socket
import time
import urllib.parse
import uuid

import pika
import pika.exceptions

AMQP_URL = os.environ.get("AMQP_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
MANAGEMENT_URL = (os.environ.get("MANAGEMENT_URL") or "http://127.0.0.1:15672").rstrip("/")
PROMETHEUS_URL = (os.environ.get("PROMETHEUS_URL") or "http://127.0.0.1:15692").rstrip("/")
# The tenancy tests' vhost (interop/tenancy.json), when the runner set it up.
TENANT_URL = os.environ.get("TENANT_URL") or ""

_amqp = urllib.parse.urlsplit(AMQP_URL)
# The management API takes the AMQP user's credentials (guest is an administrator).
USERNAME = urllib.parse.unquote(_amqp.username or "guest")
PASSWORD = urllib.parse.unquote(_amqp.password or "guest")
VHOST = urllib.parse.unquote(_amqp.path[1:]) if len(_amqp.path) > 1 else "/"

# RabbitMQ's management plugin refreshes queue, connection and channel statistics every
# 5 s (collect_statistics_interval), so what it shows can lag by that much: every
# observation of the API is polled with this deadline.
STATS_TIMEOUT = 30.0


def wait_for(observe, accept, timeout=STATS_TIMEOUT, what="condition", poll=0.25):
    """Calls observe() until accept(value) is true and returns that value.

    Raises AssertionError after ``timeout`` seconds, showing the last value observed,
    so a broker that never shows the expected state fails the test instead of hanging it.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = observe()
        if accept(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {value!r}")
        time.sleep(poll)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connection_parameters(url=AMQP_URL):
    params = pika.URLParameters(url)
    # Fail instead of hanging if the broker stops answering.
    params.socket_timeout = 10
    params.stack_timeout = 10
    params.blocked_connection_timeout = 30
    params.connection_attempts = 1
    return params


class Broker:
    """Opens pika BlockingConnections and closes them all at teardown."""

    def __init__(self):
        self._connections = []

    def connect(self, url=AMQP_URL, name=None):
        params = connection_parameters(url)
        if name:
            params.client_properties = {"connection_name": name}
        conn = pika.BlockingConnection(params)
        self._connections.append(conn)
        return conn

    def close_all(self):
        for conn in self._connections:
            if conn.is_open:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - best effort at teardown
                    pass


class Names:
    """Unique, self-cleaning queue and exchange names for one test (random suffix),
    so that repeated runs against a shared broker do not clash."""

    def __init__(self, test_name, url=AMQP_URL):
        self.run_id = uuid.uuid4().hex[:10]
        self.prefix = f"interop.mgmt.{test_name}.{self.run_id}"
        self.url = url
        self.queues = []
        self.exchanges = []

    def queue(self, label, prefix=None):
        name = f"{prefix or self.prefix}.{label}"
        self.queues.append(name)
        return name

    def exchange(self, label):
        name = f"{self.prefix}.{label}"
        self.exchanges.append(name)
        return name

    def cleanup(self):
        if not (self.queues or self.exchanges):
            return
        conn = pika.BlockingConnection(connection_parameters(self.url))
        try:
            for kind, items in (("queue", self.queues), ("exchange", self.exchanges)):
                for name in items:
                    # A fresh channel each time: a failed delete closes the channel.
                    try:
                        ch = conn.channel()
                        if kind == "queue":
                            ch.queue_delete(queue=name)
                        else:
                            ch.exchange_delete(exchange=name)
                        ch.close()
                    except pika.exceptions.ChannelClosedByBroker:
                        pass
        finally:
            conn.close()


def publish_confirmed(channel, exchange, routing_key, bodies):
    """Publishes persistent messages one by one on a confirm channel (each confirmed
    before the next), so they are all in their queues when this returns."""
    channel.confirm_delivery()
    for body in bodies:
        channel.basic_publish(
            exchange=exchange,
            routing_key=routing_key,
            body=body if isinstance(body, bytes) else body.encode(),
            properties=pika.BasicProperties(delivery_mode=2),
            mandatory=True,
        )
