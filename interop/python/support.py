"""Helpers shared by the pika interop tests (see conftest.py for the fixtures)."""

import os
import time
import uuid

import pika
import pika.exceptions

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def connection_parameters():
    params = pika.URLParameters(AMQP_URL)
    # Fail instead of hanging if the broker stops answering.
    params.socket_timeout = 10
    params.stack_timeout = 10
    params.blocked_connection_timeout = 30
    params.connection_attempts = 1
    return params


def pump_until(predicate, *connections, timeout=10.0, what="condition"):
    """Drive the given connections' I/O until predicate() is true.

    Raises AssertionError after ``timeout`` seconds, so a broker that never
    delivers fails the test instead of hanging it.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        for conn in connections:
            conn.process_data_events(time_limit=0.05)
            if predicate():
                break


def drain(*connections):
    """Process whatever has already arrived on the connections, without waiting."""
    for conn in connections:
        conn.process_data_events(time_limit=0)


class Broker:
    # Set once any connection attempt in this run has failed, so that fixture
    # teardown does not spend another connection timeout on cleanup.
    unreachable = False

    def __init__(self):
        self._connections = []

    def connect(self):
        try:
            conn = pika.BlockingConnection(connection_parameters())
        except Exception:
            Broker.unreachable = True
            raise
        Broker.unreachable = False
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
    """Unique, self-cleaning names for one test."""

    def __init__(self, test_name):
        self.run_id = uuid.uuid4().hex[:10]
        self.prefix = f"interop.py.{test_name}.{self.run_id}"
        self.queues = []
        self.exchanges = []

    def queue(self, label):
        name = f"{self.prefix}.{label}"
        self.queues.append(name)
        return name

    def exchange(self, label):
        name = f"{self.prefix}.{label}"
        self.exchanges.append(name)
        return name

    def cleanup(self):
        if not (self.queues or self.exchanges) or Broker.unreachable:
            return  # nothing to do, or the test has already failed to connect
        conn = pika.BlockingConnection(connection_parameters())
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


class Delivery:
    __slots__ = ("channel", "method", "properties", "body")

    def __init__(self, channel, method, properties, body):
        self.channel = channel
        self.method = method
        self.properties = properties
        self.body = body

    @property
    def text(self):
        return self.body.decode()


class Inbox:
    """An on_message_callback that records every delivery, in arrival order."""

    def __init__(self):
        self.deliveries = []

    def __call__(self, channel, method, properties, body):
        self.deliveries.append(Delivery(channel, method, properties, body))

    def __len__(self):
        return len(self.deliveries)

    @property
    def texts(self):
        return [d.text for d in self.deliveries]


# A message published straight to a queue (default exchange) after the real ones.
# Publishes are confirmed one by one, so when the marker arrives every message
# routed to that queue before it has been delivered: the consumer has seen the
# exact set, with no need to wait "long enough" for stragglers.
END_MARKER = "--end-of-test--"


def publish_end_markers(channel, queues):
    for q in queues:
        channel.basic_publish(exchange="", routing_key=q, body=END_MARKER.encode())


def received_before_marker(inbox):
    texts = inbox.texts
    return texts[: texts.index(END_MARKER)] if END_MARKER in texts else None
