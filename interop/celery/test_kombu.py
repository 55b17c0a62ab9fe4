"""Plain kombu (py-amqp transport) against the broker: exchanges, queues,
Producer.publish, Consumer, SimpleQueue."""

import socket
import time
import uuid

import pytest
from kombu import Exchange, Queue

from support import delete_quietly, kombu_connection

TIMEOUT = 10


@pytest.fixture
def names(request):
    run_id = uuid.uuid4().hex[:10]
    made = {"queues": [], "exchanges": []}

    class Names:
        prefix = f"interop.kombu.{request.node.name}.{run_id}"

        def queue(self, what):
            made["queues"].append(f"{self.prefix}.q.{what}")
            return made["queues"][-1]

        def exchange(self, what):
            made["exchanges"].append(f"{self.prefix}.x.{what}")
            return made["exchanges"][-1]

    yield Names()
    delete_quietly(made["queues"], made["exchanges"])


@pytest.fixture
def conn():
    # confirm_publish: each publish returns once the broker has confirmed it,
    # so what a test published is in its queues when it looks.
    c = kombu_connection(transport_options={"confirm_publish": True})
    c.connect()
    yield c
    c.release()


def drain_until(conn, predicate, what, timeout=TIMEOUT):
    """Processes broker events until predicate() holds, within the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        try:
            conn.drain_events(timeout=min(remaining, 0.5))
        except socket.timeout:
            pass


def test_producer_and_consumer_with_exchange_and_queue(conn, names):
    exchange = Exchange(names.exchange("orders"), type="direct", durable=False)
    queue = Queue(names.queue("orders"), exchange=exchange, routing_key="order.created", durable=False)
    with conn.Producer() as producer:
        for i in range(5):
            producer.publish(
                {"order": i, "items": ["a", "b"]},
                exchange=exchange, routing_key="order.created", declare=[queue],
                serializer="json", headers={"source": "interop", "seq": i},
                correlation_id=f"c{i}", retry=True,
            )
        # Routed nowhere: another key, no binding.
        producer.publish({"order": -1}, exchange=exchange, routing_key="order.deleted", serializer="json")
        # End marker, straight to the queue: once it arrives, nothing
        # routed before it is still in flight.
        producer.publish("end", exchange="", routing_key=queue.name, serializer="json")

    got = []
    done = []

    def on_message(body, message):
        message.ack()
        if body == "end":
            done.append(True)
            return
        got.append((body, message.headers, message.properties.get("correlation_id"),
                    message.content_type, message.delivery_info["routing_key"]))

    with conn.Consumer(queue, callbacks=[on_message], accept=["json"]):
        drain_until(conn, lambda: done, "the end marker")
    assert [g[0] for g in got] == [{"order": i, "items": ["a", "b"]} for i in range(5)]
    assert [g[1] for g in got] == [{"source": "interop", "seq": i} for i in range(5)]
    assert [g[2] for g in got] == [f"c{i}" for i in range(5)]
    assert {g[3] for g in got} == {"application/json"}
    assert {g[4] for g in got} == {"order.created"}
    assert queue(conn.channel()).queue_declare(passive=True).message_count == 0


def test_simple_queue(conn, names):
    name = names.queue("simple")
    sq = conn.SimpleQueue(name, serializer="json")
    try:
        # No consumer yet (SimpleQueue starts consuming on the first get).
        sq.put({"n": -2})
        sq.put({"n": -1})
        assert sq.qsize() == 2
        assert sq.clear() == 2
        assert sq.qsize() == 0

        with pytest.raises(sq.Empty):
            sq.get(block=False)
        for i in range(3):
            sq.put({"n": i}, headers={"i": i})
        msg = sq.get(timeout=TIMEOUT)
        assert msg.payload == {"n": 0} and msg.headers == {"i": 0}
        msg.ack()
        msg = sq.get(timeout=TIMEOUT)
        assert msg.payload == {"n": 1}
        # SimpleQueue consumes without a prefetch limit, so {"n": 2} was
        # already delivered: the requeued message comes again after it.
        msg.requeue()
        msg = sq.get(timeout=TIMEOUT)
        assert msg.payload == {"n": 2} and not msg.delivery_info["redelivered"]
        msg.ack()
        msg = sq.get(timeout=TIMEOUT)
        assert msg.payload == {"n": 1} and msg.delivery_info["redelivered"]
        msg.ack()
        with pytest.raises(sq.Empty):
            sq.get(timeout=0.2)
        assert sq.qsize() == 0
    finally:
        sq.close()
        # SimpleQueue also declared a direct exchange named like the queue.
        delete_quietly(exchanges=[name])


def test_topic_exchange_one_consumer_two_queues(conn, names):
    exchange = Exchange(names.exchange("events"), type="topic", durable=False)
    users = Queue(names.queue("users"), exchange=exchange, routing_key="user.*", durable=False)
    all_events = Queue(names.queue("all"), exchange=exchange, routing_key="#", durable=False)
    keys = ["user.created", "user.deleted", "billing.invoice.sent", "user.profile.updated"]
    with conn.Producer() as producer:
        for key in keys:
            producer.publish({"key": key}, exchange=exchange, routing_key=key,
                             declare=[users, all_events], serializer="json")
    got = {users.name: [], all_events.name: []}

    def collector(queue_name):
        def on_message(body, message):
            got[queue_name].append(body["key"])
            message.ack()
        return on_message

    with conn.Consumer(users, callbacks=[collector(users.name)], accept=["json"]), \
            conn.Consumer(all_events, callbacks=[collector(all_events.name)], accept=["json"]):
        drain_until(conn, lambda: len(got[users.name]) >= 2 and len(got[all_events.name]) >= 4, "6 deliveries")
    assert got[users.name] == ["user.created", "user.deleted"]
    assert got[all_events.name] == keys


def test_mandatory_unroutable_publish_with_confirms(names):
    # confirm_publish: every publish waits for the broker's ack; py-amqp
    # turns the basic.return that precedes it into an exception.
    with kombu_connection(transport_options={"confirm_publish": True}) as conn:
        exchange = Exchange(names.exchange("nowhere"), type="direct", durable=False)
        with conn.Producer() as producer:
            exchange(producer.channel).declare()
            with pytest.raises(Exception) as excinfo:
                producer.publish({"x": 1}, exchange=exchange, routing_key="no-binding",
                                 mandatory=True, serializer="json")
            err = excinfo.value
            assert getattr(err, "reply_code", None) == 312, repr(err)
            assert "NO_ROUTE" in str(err)
            # The channel stays usable: a routable publish is confirmed.
            queue = Queue(names.queue("ok"), exchange=exchange, routing_key="ok", durable=False)
            producer.publish({"x": 2}, exchange=exchange, routing_key="ok", declare=[queue],
                             mandatory=True, serializer="json")
            assert queue(conn.channel()).queue_declare(passive=True).message_count == 1
