"""The six classic AMQP 0-9-1 tutorial scenarios, written with pika's
BlockingConnection, each asserting what the application observes.

Producers and consumers use separate connections, as separate programs would.
All waits go through support.pump_until, which has a deadline.
"""

import uuid

import pika

from support import (
    END_MARKER,
    Inbox,
    drain,
    publish_end_markers,
    pump_until,
    received_before_marker,
)

PERSISTENT = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)


# --------------------------------------------------------------- 1. hello ----


def test_hello_world(broker, names):
    queue = names.queue("greetings")

    sender = broker.connect()
    send_ch = sender.channel()
    ok = send_ch.queue_declare(queue=queue)
    assert ok.method.queue == queue
    assert ok.method.message_count == 0
    assert ok.method.consumer_count == 0
    send_ch.basic_publish(exchange="", routing_key=queue, body=b"hi there, warren")

    receiver = broker.connect()
    recv_ch = receiver.channel()
    recv_ch.queue_declare(queue=queue)  # idempotent: both sides declare it
    inbox = Inbox()
    tag = recv_ch.basic_consume(queue=queue, on_message_callback=inbox, auto_ack=True)
    pump_until(lambda: len(inbox) >= 1, receiver, what="the greeting")

    (d,) = inbox.deliveries
    assert d.body == b"hi there, warren"
    assert d.method.exchange == ""
    assert d.method.routing_key == queue
    assert d.method.consumer_tag == tag
    assert d.method.redelivered is False
    assert d.method.delivery_tag == 1

    # auto_ack: nothing is left behind in the queue.
    check = receiver.channel()
    assert check.queue_declare(queue=queue, passive=True).method.message_count == 0


# ---------------------------------------------------------- 2. work queues ----


class Worker:
    """A consumer with prefetch 1 that records deliveries but only acks when told."""

    def __init__(self, broker, queue, label):
        self.label = label
        self.conn = broker.connect()
        self.ch = self.conn.channel()
        self.ch.queue_declare(queue=queue, durable=True)
        self.ch.basic_qos(prefetch_count=1)
        self.unacked = []
        self.done = []
        self.max_unacked = 0
        self.ch.basic_consume(queue=queue, on_message_callback=self._on_message)

    def _on_message(self, ch, method, properties, body):
        self.unacked.append((method, properties, body))
        self.max_unacked = max(self.max_unacked, len(self.unacked))

    def finish_all(self):
        """Complete (ack) every task received so far."""
        for method, properties, body in self.unacked:
            assert properties.delivery_mode == 2, "persistence flag lost"
            assert method.redelivered is False
            self.ch.basic_ack(delivery_tag=method.delivery_tag)
            self.done.append(body.decode())
        self.unacked = []


def test_work_queues_fair_dispatch(broker, names):
    queue = names.queue("tasks")

    producer = broker.connect()
    pch = producer.channel()
    pch.confirm_delivery()
    pch.queue_declare(queue=queue, durable=True)

    def publish(tasks):
        for t in tasks:
            pch.basic_publish(exchange="", routing_key=queue, body=t.encode(), properties=PERSISTENT)

    first_batch = [f"task {i} " + "." * (i % 4) for i in range(1, 7)]
    publish(first_batch)

    # Worker A takes one task and stays busy with it (does not ack).
    a = Worker(broker, queue, "A")
    pump_until(lambda: len(a.unacked) == 1, a.conn, what="worker A's first task")
    busy_task = a.unacked[0][2].decode()
    assert busy_task == first_batch[0]

    # With prefetch_count=1 the broker must not hand A anything else while it is
    # busy: its single unacked task stays with it, the other five wait in the queue.
    check = producer.channel()
    assert check.queue_declare(queue=queue, passive=True).method.message_count == 5

    # Worker B arrives and, completing tasks one at a time, gets all the rest.
    b = Worker(broker, queue, "B")

    def b_step():
        drain(a.conn)
        b.finish_all()
        return len(b.done) == 5

    pump_until(b_step, b.conn, what="worker B to process the remaining five tasks")
    drain(a.conn, b.conn)
    assert len(a.unacked) == 1, "busy worker A was given more work despite prefetch_count=1"
    assert b.done == first_batch[1:], "tasks should reach B in queue order"
    a.finish_all()

    # Both idle: a second batch is spread over both workers, each holding at most
    # one unacknowledged task at any time.
    second_batch = [f"job {i} " + "." * (i % 3) for i in range(1, 9)]
    publish(second_batch)

    def both_step():
        a.finish_all()
        b.finish_all()
        return len(a.done) + len(b.done) == len(first_batch) + len(second_batch)

    pump_until(both_step, a.conn, b.conn, what="both workers to process the second batch")
    assert a.max_unacked == 1 and b.max_unacked == 1
    second_a = [t for t in a.done if t in second_batch]
    second_b = [t for t in b.done if t in second_batch]
    assert second_a and second_b, "prefetch 1 with two idle workers must use both"

    everything = a.done + b.done
    assert sorted(everything) == sorted(first_batch + second_batch), "each task exactly once"
    assert len(set(everything)) == len(everything)

    drain(a.conn, b.conn)
    assert not a.unacked and not b.unacked
    ok = check.queue_declare(queue=queue, passive=True)
    assert ok.method.message_count == 0
    assert ok.method.consumer_count == 2


# ------------------------------------------------------ 3. publish/subscribe ----


def test_publish_subscribe_fanout(broker, names):
    exchange = names.exchange("logs")

    publisher = broker.connect()
    pub = publisher.channel()
    pub.exchange_declare(exchange=exchange, exchange_type="fanout")
    pub.confirm_delivery()
    # Nobody is subscribed yet: this one is dropped, not stored for later subscribers.
    pub.basic_publish(exchange=exchange, routing_key="", body=b"before anyone listened")

    subscribers = []
    for _ in range(2):
        conn = broker.connect()
        ch = conn.channel()
        ch.exchange_declare(exchange=exchange, exchange_type="fanout")
        ok = ch.queue_declare(queue="", exclusive=True)
        qname = ok.method.queue
        assert qname.startswith("amq.gen-"), qname
        ch.queue_bind(exchange=exchange, queue=qname)
        inbox = Inbox()
        ch.basic_consume(queue=qname, on_message_callback=inbox, auto_ack=True)
        subscribers.append((conn, ch, qname, inbox))
    assert subscribers[0][2] != subscribers[1][2]

    lines = [f"log line {i}" for i in range(10)]
    for line in lines:
        # The routing key is ignored by a fanout exchange.
        pub.basic_publish(exchange=exchange, routing_key=f"ignored.{line}", body=line.encode())
    publish_end_markers(pub, [s[2] for s in subscribers])

    for conn, _ch, qname, inbox in subscribers:
        pump_until(lambda: END_MARKER in inbox.texts, conn, what=f"end marker on {qname}")
        assert received_before_marker(inbox) == lines
        assert all(d.method.exchange == exchange for d in inbox.deliveries[: len(lines)])

    # Exclusive queues belong to their connection and go away with it.
    conn0, _, q0, _ = subscribers[0]
    conn0.close()
    gone = False
    for _ in range(50):
        probe = publisher.channel()
        try:
            probe.queue_declare(queue=q0, passive=True)
            probe.close()
        except pika.exceptions.ChannelClosedByBroker as e:
            assert e.reply_code == 404
            gone = True
            break
        publisher.process_data_events(time_limit=0.1)
    assert gone, "exclusive queue survived its connection"


# ------------------------------------------------------------- 4. routing ----


def test_routing_direct(broker, names):
    exchange = names.exchange("direct_logs")

    def subscriber(severities):
        conn = broker.connect()
        ch = conn.channel()
        ch.exchange_declare(exchange=exchange, exchange_type="direct")
        qname = ch.queue_declare(queue="", exclusive=True).method.queue
        for sev in severities:
            ch.queue_bind(exchange=exchange, queue=qname, routing_key=sev)
        inbox = Inbox()
        ch.basic_consume(queue=qname, on_message_callback=inbox, auto_ack=True)
        return conn, qname, inbox

    # One program writes errors to disk, another prints everything but debug.
    disk = subscriber(["error"])
    screen = subscriber(["info", "warning", "error"])

    publisher = broker.connect()
    pub = publisher.channel()
    pub.exchange_declare(exchange=exchange, exchange_type="direct")
    pub.confirm_delivery()
    sent = []
    for i, sev in enumerate(["info", "error", "debug", "warning", "error", "info", "debug", "error"]):
        body = f"{sev}: event {i}"
        pub.basic_publish(exchange=exchange, routing_key=sev, body=body.encode())
        sent.append((sev, body))
    publish_end_markers(pub, [disk[1], screen[1]])

    for conn, qname, inbox in (disk, screen):
        pump_until(lambda: END_MARKER in inbox.texts, conn, what=f"end marker on {qname}")

    assert received_before_marker(disk[2]) == [b for s, b in sent if s == "error"]
    assert received_before_marker(screen[2]) == [b for s, b in sent if s in ("info", "warning", "error")]
    for d in disk[2].deliveries[:-1] + screen[2].deliveries[:-1]:
        assert d.text.startswith(d.method.routing_key + ":")


# -------------------------------------------------------------- 5. topics ----

TOPIC_BINDINGS = {
    "orange": ["*.orange.*"],
    "rabbits_and_lazy": ["*.*.rabbit", "lazy.#"],
    "everything": ["#"],
    "kern": ["kern.#"],
    "a_star": ["a.*"],
    "ends_in_b": ["#.b"],
    "a_hash_c": ["a.#.c"],
    "exact": ["a.b"],
}

TOPIC_KEYS = [
    "quick.orange.rabbit",
    "lazy.orange.elephant",
    "quick.orange.fox",
    "lazy.brown.fox",
    "lazy.pink.rabbit",
    "quick.brown.fox",
    "orange",
    "quick.orange.male.rabbit",
    "lazy.orange.male.rabbit",
    "lazy",
    "kern",
    "kern.critical",
    "kern.disk.full",
    "kernel.panic",
    "a",
    "a.b",
    "a.b.c",
    "a.c",
    "a.x.y.c",
    "b",
    "x.y.b",
    "",
]

# Written out by hand (not computed) so the test does not share a matcher's bugs.
TOPIC_EXPECTED = {
    "orange": ["quick.orange.rabbit", "lazy.orange.elephant", "quick.orange.fox"],
    # "lazy.pink.rabbit" matches both bindings but is delivered once.
    "rabbits_and_lazy": [
        "quick.orange.rabbit",
        "lazy.orange.elephant",
        "lazy.brown.fox",
        "lazy.pink.rabbit",
        "lazy.orange.male.rabbit",
        "lazy",
    ],
    "everything": TOPIC_KEYS,
    # '#' matches zero words: "kern" matches "kern.#"; "kernel.panic" does not.
    "kern": ["kern", "kern.critical", "kern.disk.full"],
    # '*' is exactly one word: "a" and "a.b.c" do not match "a.*".
    "a_star": ["a.b", "a.c"],
    "ends_in_b": ["a.b", "b", "x.y.b"],
    "a_hash_c": ["a.b.c", "a.c", "a.x.y.c"],
    "exact": ["a.b"],
}


def test_topics(broker, names):
    exchange = names.exchange("topic_logs")

    consumer = broker.connect()
    cch = consumer.channel()
    cch.exchange_declare(exchange=exchange, exchange_type="topic")
    queues = {}
    inboxes = {}
    for label, patterns in TOPIC_BINDINGS.items():
        qname = cch.queue_declare(queue="", exclusive=True).method.queue
        for pattern in patterns:
            cch.queue_bind(exchange=exchange, queue=qname, routing_key=pattern)
        queues[label] = qname
        inboxes[label] = Inbox()
        cch.basic_consume(queue=qname, on_message_callback=inboxes[label], auto_ack=True)

    publisher = broker.connect()
    pub = publisher.channel()
    pub.confirm_delivery()
    for key in TOPIC_KEYS:
        pub.basic_publish(exchange=exchange, routing_key=key, body=key.encode())
    publish_end_markers(pub, queues.values())

    pump_until(
        lambda: all(END_MARKER in ib.texts for ib in inboxes.values()),
        consumer,
        what="end markers on every topic queue",
    )
    for label, inbox in inboxes.items():
        got = received_before_marker(inbox)
        assert got == TOPIC_EXPECTED[label], f"binding(s) {TOPIC_BINDINGS[label]}"
        for d in inbox.deliveries[:-1]:
            assert d.method.routing_key == d.text


# ----------------------------------------------------------------- 6. RPC ----


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


class FibServer:
    def __init__(self, broker, queue):
        self.conn = broker.connect()
        self.ch = self.conn.channel()
        self.ch.queue_declare(queue=queue)
        self.ch.basic_qos(prefetch_count=1)
        self.ch.basic_consume(queue=queue, on_message_callback=self._on_request)
        self.served = 0

    def _on_request(self, ch, method, props, body):
        result = fib(int(body))
        ch.basic_publish(
            exchange="",
            routing_key=props.reply_to,
            properties=pika.BasicProperties(correlation_id=props.correlation_id),
            body=str(result).encode(),
        )
        ch.basic_ack(delivery_tag=method.delivery_tag)
        self.served += 1


class FibClient:
    def __init__(self, broker, rpc_queue):
        self.rpc_queue = rpc_queue
        self.conn = broker.connect()
        self.ch = self.conn.channel()
        self.callback_queue = self.ch.queue_declare(queue="", exclusive=True).method.queue
        self.responses = {}
        self.reply_meta = []
        self.ch.basic_consume(queue=self.callback_queue, on_message_callback=self._on_response, auto_ack=True)

    def _on_response(self, ch, method, props, body):
        self.reply_meta.append((method.exchange, method.routing_key))
        self.responses[props.correlation_id] = int(body)

    def send(self, n):
        corr_id = str(uuid.uuid4())
        self.ch.basic_publish(
            exchange="",
            routing_key=self.rpc_queue,
            properties=pika.BasicProperties(reply_to=self.callback_queue, correlation_id=corr_id),
            body=str(n).encode(),
        )
        return corr_id

    def call(self, n, server):
        corr_id = self.send(n)
        pump_until(lambda: corr_id in self.responses, self.conn, server.conn, what=f"fib({n}) reply")
        return self.responses.pop(corr_id)


def test_rpc(broker, names):
    rpc_queue = names.queue("rpc")
    server = FibServer(broker, rpc_queue)
    client = FibClient(broker, rpc_queue)
    assert client.callback_queue.startswith("amq.gen-")

    # One call at a time, like the tutorial's client.
    assert client.call(30, server) == 832040
    assert client.call(0, server) == 0

    # Several calls in flight: replies are matched purely by correlation id.
    ns = [1, 2, 10, 25, 50, 7]
    pending = {client.send(n): n for n in ns}
    pump_until(
        lambda: all(c in client.responses for c in pending),
        client.conn,
        server.conn,
        what="all in-flight fib replies",
    )
    assert {c: client.responses[c] for c in pending} == {c: fib(n) for c, n in pending.items()}
    assert len(client.responses) == len(ns)
    assert server.served == 2 + len(ns)
    assert all(m == ("", client.callback_queue) for m in client.reply_meta)
