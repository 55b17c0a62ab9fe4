"""RabbitMQ's queue and exchange extensions, as a pika application sees them.

Every assertion is about something the application can observe: which messages
arrive where and in what order, the exact headers and properties they carry
(including the AMQP field type where pika exposes it), and the exact reply code
and text of channel errors. The reference is RabbitMQ 3.10 (Debian's package,
no plugins enabled), so the same file checks that Warren behaves the same way.

Not covered here, because the reference broker does not have them:
  - the delayed-message exchange (x-delayed-message) needs the
    rabbitmq_delayed_message_exchange plugin, which Debian does not ship;
  - the x-consumer-timeout queue argument / consumer argument only exists in
    RabbitMQ releases newer than 3.10.
"""

import datetime

import pika
import pika.compat
import pika.exceptions
import pytest

from support import (
    AMQP_URL,
    END_MARKER,
    Inbox,
    drain,
    publish_end_markers,
    pump_until,
    received_before_marker,
)

VHOST = pika.URLParameters(AMQP_URL).virtual_host


# ------------------------------------------------------------------ helpers --


def assert_long(value):
    """RabbitMQ sends counters in headers as signed 64-bit integers (field
    type 'l'); pika decodes exactly that type as pika.compat.long (an int
    subclass), while a 32-bit 'I' would decode as a plain int."""
    assert type(value) is pika.compat.long, f"{value!r} is {type(value)}, expected a 64-bit 'l' field"


def x_death_without_time(headers):
    """The x-death entries with their 'time' checked (an AMQP timestamp, close
    to now) and removed, so the rest can be compared exactly."""
    entries = headers["x-death"]
    assert isinstance(entries, list), entries
    now = datetime.datetime.now(datetime.timezone.utc)
    out = []
    for entry in entries:
        entry = dict(entry)
        when = entry.pop("time")
        assert isinstance(when, datetime.datetime), when
        assert abs((now - when).total_seconds()) < 120, when
        assert_long(entry["count"])
        out.append(entry)
    return out


def reply_text(full):
    """A reply-text is an AMQP short string (at most 255 bytes): RabbitMQ cuts a
    longer one to 252 bytes plus '...'. Test names make some texts that long."""
    raw = full.encode()
    return full if len(raw) <= 255 else raw[:252].decode() + "..."


def without_x_death(headers):
    return {k: v for k, v in headers.items() if k != "x-death"}


def get_all(channel, queue):
    """basic.get with auto-ack until the queue is empty; returns (properties, body) pairs."""
    out = []
    while True:
        method, props, body = channel.basic_get(queue=queue, auto_ack=True)
        if method is None:
            return out
        out.append((props, body))


def message_count(channel, queue):
    return channel.queue_declare(queue=queue, passive=True).method.message_count


def queue_exists(conn, queue):
    ch = conn.channel()
    try:
        ch.queue_declare(queue=queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 404, exc
        return False
    ch.close()
    return True


def consume_into(conn, channel, queue, **kwargs):
    inbox = Inbox()
    channel.basic_consume(queue=queue, on_message_callback=inbox, **kwargs)
    return inbox


def declare_dead_letter_queue(channel, names, label="dead"):
    """A queue that dead-letters are routed to through the default exchange."""
    dlq = names.queue(label)
    channel.queue_declare(queue=dlq)
    return dlq


# ------------------------------------------------------- 1. message TTL --


def test_queue_ttl_dead_letters_expired_message_never_delivered(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    dlx = names.exchange("dlx")
    ch.exchange_declare(exchange=dlx, exchange_type="fanout")
    dlq = names.queue("dead")
    ch.queue_declare(queue=dlq)
    ch.queue_bind(queue=dlq, exchange=dlx)
    src = names.queue("ttl")
    ch.queue_declare(queue=src, arguments={"x-message-ttl": 200, "x-dead-letter-exchange": dlx})

    # A consumer is attached to the source the whole time, but its single
    # prefetch slot is held by an unacked message, so the doomed one waits
    # in the queue and expires there.
    consumer_ch = conn.channel()
    consumer_ch.basic_qos(prefetch_count=1)
    ch.basic_publish(exchange="", routing_key=src, body=b"held")
    source_inbox = consume_into(conn, consumer_ch, src)
    pump_until(lambda: len(source_inbox) == 1, conn, what="the held message")
    ch.basic_publish(
        exchange="",
        routing_key=src,
        body=b"doomed",
        properties=pika.BasicProperties(headers={"app": "kept"}, delivery_mode=2, message_id="m-1"),
    )

    dead_inbox = consume_into(conn, conn.channel(), dlq, auto_ack=True)
    pump_until(lambda: len(dead_inbox) == 1, conn, timeout=10, what="the expired message to be dead-lettered")
    dead = dead_inbox.deliveries[0]
    assert dead.body == b"doomed"
    # Re-published through the DLX with the routing key it had.
    assert dead.method.exchange == dlx
    assert dead.method.routing_key == src
    assert dead.method.redelivered is False
    assert dead.properties.delivery_mode == 2
    assert dead.properties.message_id == "m-1"
    assert dead.properties.expiration is None
    assert without_x_death(dead.properties.headers) == {
        "app": "kept",
        "x-first-death-exchange": "",
        "x-first-death-queue": src,
        "x-first-death-reason": "expired",
    }
    # A queue TTL is not an 'original-expiration'.
    assert x_death_without_time(dead.properties.headers) == [
        {"count": 1, "reason": "expired", "queue": src, "exchange": "", "routing-keys": [src]},
    ]

    # Freeing the prefetch slot does not bring the expired message back.
    consumer_ch.basic_ack(delivery_tag=source_inbox.deliveries[0].method.delivery_tag)
    publish_end_markers(ch, [src])
    pump_until(lambda: received_before_marker(source_inbox) is not None, conn, what="end marker")
    assert received_before_marker(source_inbox) == ["held"]
    assert message_count(ch, src) == 0


def test_per_message_expiration_is_dead_lettered_with_original_expiration(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    dlq = declare_dead_letter_queue(ch, names)
    src = names.queue("per-message")
    ch.queue_declare(queue=src, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
    ch.basic_publish(
        exchange="",
        routing_key=src,
        body=b"short-lived",
        properties=pika.BasicProperties(expiration="100", content_type="text/plain"),
    )
    ch.basic_publish(exchange="", routing_key=src, body=b"no expiry")

    dead_inbox = consume_into(conn, conn.channel(), dlq, auto_ack=True)
    pump_until(lambda: len(dead_inbox) == 1, conn, what="the expired message to be dead-lettered")
    dead = dead_inbox.deliveries[0]
    assert dead.body == b"short-lived"
    assert dead.method.exchange == ""
    assert dead.method.routing_key == dlq
    # The dead-lettered copy no longer expires; the old value is in x-death.
    assert dead.properties.expiration is None
    assert dead.properties.content_type == "text/plain"
    assert without_x_death(dead.properties.headers) == {
        "x-first-death-exchange": "",
        "x-first-death-queue": src,
        "x-first-death-reason": "expired",
    }
    assert x_death_without_time(dead.properties.headers) == [
        {
            "count": 1,
            "reason": "expired",
            "queue": src,
            "exchange": "",
            "routing-keys": [src],
            "original-expiration": "100",
        },
    ]
    # Only the expired message went; the other one is still in the source.
    got = get_all(ch, src)
    assert [body for _, body in got] == [b"no expiry"]


# ------------------------------------------------------ 2. queue expiry --


def test_x_expires_deletes_an_unused_queue(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    queue = names.queue("expires")
    ch.queue_declare(queue=queue, arguments={"x-expires": 300})
    # A passive declare counts as using the queue (it restarts the expiry
    # timer), so poll less often than the expiry period.
    deadline_polls = 20
    for _ in range(deadline_polls):
        conn.process_data_events(time_limit=0.6)
        if not queue_exists(conn, queue):
            break
    else:
        raise AssertionError(f"queue with x-expires=300 still exists after {deadline_polls * 0.6:.0f}s")
    # Gone for good: a passive declare is a 404 naming the queue.
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_declare(queue=queue, passive=True)
    assert exc.value.reply_code == 404
    assert exc.value.reply_text == reply_text(f"NOT_FOUND - no queue '{queue}' in vhost '{VHOST}'")


def test_x_expires_waits_while_the_queue_is_used(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    queue = names.queue("in-use")
    ch.queue_declare(queue=queue, arguments={"x-expires": 300})

    # A consumer keeps it alive well past the expiry period...
    tag = ch.basic_consume(queue=queue, on_message_callback=lambda *a: None)
    conn.process_data_events(time_limit=1.0)
    assert queue_exists(conn, queue)
    ch.basic_cancel(tag)

    # ...and so do frequent passive declares.
    for _ in range(20):
        conn.process_data_events(time_limit=0.05)
        assert queue_exists(conn, queue)

    # Left alone, it goes.
    for _ in range(20):
        conn.process_data_events(time_limit=0.6)
        if not queue_exists(conn, queue):
            break
    else:
        raise AssertionError("queue did not expire after its consumer was cancelled")


# ---------------------------------------------- 3. length limits, overflow --


def test_max_length_drop_head_keeps_newest_and_dead_letters_oldest(broker, names):
    ch = broker.connect().channel()
    ch.confirm_delivery()
    dlq = declare_dead_letter_queue(ch, names)
    queue = names.queue("max-len")
    ch.queue_declare(
        queue=queue,
        arguments={"x-max-length": 3, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq},
    )
    for body in (b"a", b"b", b"c", b"d", b"e"):
        ch.basic_publish(exchange="", routing_key=queue, body=body)  # all confirmed (acked)

    assert message_count(ch, queue) == 3
    assert [body for _, body in get_all(ch, queue)] == [b"c", b"d", b"e"]
    dead = get_all(ch, dlq)
    assert [body for _, body in dead] == [b"a", b"b"]
    for props, _ in dead:
        assert without_x_death(props.headers) == {
            "x-first-death-exchange": "",
            "x-first-death-queue": queue,
            "x-first-death-reason": "maxlen",
        }
        assert x_death_without_time(props.headers) == [
            {"count": 1, "reason": "maxlen", "queue": queue, "exchange": "", "routing-keys": [queue]},
        ]


def test_max_length_bytes_drops_head(broker, names):
    ch = broker.connect().channel()
    ch.confirm_delivery()
    queue = names.queue("max-bytes")
    # Only bodies count: 4 + 4 + 4 bytes > 10 drops the first; + 2 is exactly 10.
    ch.queue_declare(queue=queue, arguments={"x-max-length-bytes": 10})
    for body in (b"aaaa", b"bbbb", b"cccc", b"dd"):
        ch.basic_publish(
            exchange="", routing_key=queue, body=body, properties=pika.BasicProperties(headers={"padding": "x" * 50})
        )
    assert message_count(ch, queue) == 3
    assert [body for _, body in get_all(ch, queue)] == [b"bbbb", b"cccc", b"dd"]


def test_overflow_reject_publish_nacks_under_confirms(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    dlq = declare_dead_letter_queue(ch, names)
    queue = names.queue("reject-publish")
    ch.queue_declare(
        queue=queue,
        arguments={
            "x-max-length": 2,
            "x-overflow": "reject-publish",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dlq,
        },
    )
    ch.basic_publish(exchange="", routing_key=queue, body=b"one")
    ch.basic_publish(exchange="", routing_key=queue, body=b"two")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish(exchange="", routing_key=queue, body=b"three")
    # A nack is not a channel error, and reject-publish does not dead-letter.
    assert ch.is_open
    assert message_count(ch, queue) == 2
    assert message_count(ch, dlq) == 0

    # Room again after one is consumed: the next publish is acked.
    method, _, body = ch.basic_get(queue=queue, auto_ack=True)
    assert body == b"one"
    ch.basic_publish(exchange="", routing_key=queue, body=b"four")
    assert [body for _, body in get_all(ch, queue)] == [b"two", b"four"]


def test_overflow_reject_publish_dlx_nacks_and_dead_letters(broker, names):
    ch = broker.connect().channel()
    ch.confirm_delivery()
    dlq = declare_dead_letter_queue(ch, names)
    queue = names.queue("reject-publish-dlx")
    ch.queue_declare(
        queue=queue,
        arguments={
            "x-max-length": 1,
            "x-overflow": "reject-publish-dlx",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dlq,
        },
    )
    ch.basic_publish(exchange="", routing_key=queue, body=b"fits")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish(exchange="", routing_key=queue, body=b"overflows")
    assert [body for _, body in get_all(ch, queue)] == [b"fits"]
    dead = get_all(ch, dlq)
    assert [body for _, body in dead] == [b"overflows"]
    (props, _), = dead
    assert without_x_death(props.headers) == {
        "x-first-death-exchange": "",
        "x-first-death-queue": queue,
        "x-first-death-reason": "maxlen",
    }
    assert x_death_without_time(props.headers) == [
        {"count": 1, "reason": "maxlen", "queue": queue, "exchange": "", "routing-keys": [queue]},
    ]


# --------------------------------------------------- 4. dead-lettering --


def test_reject_without_requeue_dead_letters_with_x_death(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    exchange = names.exchange("orders")
    ch.exchange_declare(exchange=exchange, exchange_type="direct")
    dlx = names.exchange("dlx")
    ch.exchange_declare(exchange=dlx, exchange_type="fanout")
    dlq = names.queue("dead")
    ch.queue_declare(queue=dlq)
    ch.queue_bind(queue=dlq, exchange=dlx)
    queue = names.queue("work")
    ch.queue_declare(queue=queue, arguments={"x-dead-letter-exchange": dlx})
    ch.queue_bind(queue=queue, exchange=exchange, routing_key="new")

    # Routed by its CC key too; both keys are recorded, the BCC one is not.
    ch.basic_publish(
        exchange=exchange,
        routing_key="new",
        body=b"bad order",
        properties=pika.BasicProperties(
            headers={"CC": ["audit"], "BCC": ["secret"], "n": 7}, correlation_id="c-9", priority=3
        ),
    )
    ch.basic_publish(exchange=exchange, routing_key="new", body=b"also bad")

    inbox = consume_into(conn, ch, queue)
    pump_until(lambda: len(inbox) == 2, conn, what="two deliveries")
    first, second = inbox.deliveries
    ch.basic_reject(delivery_tag=first.method.delivery_tag, requeue=False)
    ch.basic_nack(delivery_tag=second.method.delivery_tag, requeue=False)

    dead_inbox = consume_into(conn, conn.channel(), dlq, auto_ack=True)
    pump_until(lambda: len(dead_inbox) == 2, conn, what="both dead-lettered")
    d1, d2 = dead_inbox.deliveries
    assert (d1.body, d2.body) == (b"bad order", b"also bad")
    assert d1.method.exchange == dlx
    assert d1.method.routing_key == "new"
    assert d1.properties.correlation_id == "c-9"
    assert d1.properties.priority == 3
    assert without_x_death(d1.properties.headers) == {
        "CC": ["audit"],
        "n": 7,
        "x-first-death-exchange": exchange,
        "x-first-death-queue": queue,
        "x-first-death-reason": "rejected",
    }
    assert x_death_without_time(d1.properties.headers) == [
        {"count": 1, "reason": "rejected", "queue": queue, "exchange": exchange, "routing-keys": ["new", "audit"]},
    ]
    # basic.nack(requeue=False) is a rejection too.
    assert without_x_death(d2.properties.headers) == {
        "x-first-death-exchange": exchange,
        "x-first-death-queue": queue,
        "x-first-death-reason": "rejected",
    }
    assert x_death_without_time(d2.properties.headers) == [
        {"count": 1, "reason": "rejected", "queue": queue, "exchange": exchange, "routing-keys": ["new"]},
    ]
    assert message_count(ch, queue) == 0


def test_retry_pattern_counts_deaths_per_queue_and_reason(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    jobs = names.exchange("jobs")
    ch.exchange_declare(exchange=jobs, exchange_type="direct")
    work = names.queue("work")
    retry = names.queue("retry")
    # work --reject--> (default exchange, key=retry) --> retry --TTL--> jobs/"job" --> work
    ch.queue_declare(queue=work, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": retry})
    ch.queue_bind(queue=work, exchange=jobs, routing_key="job")
    ch.queue_declare(
        queue=retry,
        arguments={"x-message-ttl": 50, "x-dead-letter-exchange": jobs, "x-dead-letter-routing-key": "job"},
    )
    ch.basic_publish(
        exchange=jobs, routing_key="job", body=b"flaky", properties=pika.BasicProperties(headers={"attempt": "x"})
    )

    attempts = []

    def worker(channel, method, properties, body):
        attempts.append((method, properties, body))
        if len(attempts) < 3:
            channel.basic_reject(delivery_tag=method.delivery_tag, requeue=False)
        else:
            channel.basic_ack(delivery_tag=method.delivery_tag)

    ch.basic_consume(queue=work, on_message_callback=worker)
    pump_until(lambda: len(attempts) == 3, conn, what="third attempt")

    for method, _, body in attempts:
        assert body == b"flaky"
        assert method.exchange == jobs
        assert method.routing_key == "job"
        assert method.redelivered is False  # a dead-lettered message is a new message
    assert attempts[0][1].headers == {"attempt": "x"}

    first_death = {
        "attempt": "x",
        "x-first-death-exchange": jobs,
        "x-first-death-queue": work,
        "x-first-death-reason": "rejected",
    }
    # One entry per (queue, reason), the most recent first, each with its count.
    second = attempts[1][1].headers
    assert without_x_death(second) == first_death
    assert x_death_without_time(second) == [
        {"count": 1, "reason": "expired", "queue": retry, "exchange": "", "routing-keys": [retry]},
        {"count": 1, "reason": "rejected", "queue": work, "exchange": jobs, "routing-keys": ["job"]},
    ]
    third = attempts[2][1].headers
    assert without_x_death(third) == first_death
    assert x_death_without_time(third) == [
        {"count": 2, "reason": "expired", "queue": retry, "exchange": "", "routing-keys": [retry]},
        {"count": 2, "reason": "rejected", "queue": work, "exchange": jobs, "routing-keys": ["job"]},
    ]


# --------------------------------------------------- 5. priority queues --


def test_max_priority_delivers_higher_priority_first(broker, names):
    ch = broker.connect().channel()
    ch.confirm_delivery()
    queue = names.queue("prio")
    ch.queue_declare(queue=queue, arguments={"x-max-priority": 5})
    published = [
        ("none-1", None),
        ("p1-a", 1),
        ("p9", 9),  # above the maximum: treated as 5
        ("p5-a", 5),
        ("p1-b", 1),
        ("none-2", None),
        ("p5-b", 5),
        ("p3", 3),
        ("p200", 200),  # likewise
    ]
    for body, priority in published:
        ch.basic_publish(
            exchange="", routing_key=queue, body=body.encode(), properties=pika.BasicProperties(priority=priority)
        )
    got = [(body.decode(), props.priority) for props, body in get_all(ch, queue)]
    # FIFO within a priority; the property itself is delivered unchanged.
    assert got == [
        ("p9", 9),
        ("p5-a", 5),
        ("p5-b", 5),
        ("p200", 200),
        ("p3", 3),
        ("p1-a", 1),
        ("p1-b", 1),
        ("none-1", None),
        ("none-2", None),
    ]


def test_max_priority_applies_to_consumers(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    queue = names.queue("prio-consume")
    ch.queue_declare(queue=queue, arguments={"x-max-priority": 10})
    for body, priority in (("low", 1), ("mid", 5), ("high", 10), ("mid-2", 5)):
        ch.basic_publish(
            exchange="", routing_key=queue, body=body.encode(), properties=pika.BasicProperties(priority=priority)
        )
    inbox = consume_into(conn, conn.channel(), queue, auto_ack=True)
    pump_until(lambda: len(inbox) == 4, conn, what="four deliveries")
    assert inbox.texts == ["high", "mid", "mid-2", "low"]


# ------------------------------------------------ 6. consumer priorities --


def test_higher_priority_consumer_gets_everything_while_it_has_capacity(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    queue = names.queue("consumers")
    ch.queue_declare(queue=queue)
    low_ch, high_ch = conn.channel(), conn.channel()
    low = consume_into(conn, low_ch, queue, auto_ack=True)
    high = consume_into(conn, high_ch, queue, auto_ack=True, arguments={"x-priority": 10})
    for i in range(5):
        ch.basic_publish(exchange="", routing_key=queue, body=f"m{i}".encode())
    publish_end_markers(ch, [queue])
    pump_until(lambda: received_before_marker(high) is not None, conn, what="end marker")
    low_ch.basic_qos(prefetch_count=0)  # a round trip on the low-priority channel
    drain(conn)
    assert received_before_marker(high) == [f"m{i}" for i in range(5)]
    assert low.texts == []


def test_lower_priority_consumer_gets_messages_when_higher_is_blocked(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    queue = names.queue("blocked")
    ch.queue_declare(queue=queue)
    low_ch, high_ch = conn.channel(), conn.channel()
    high_ch.basic_qos(prefetch_count=1)
    low_ch.basic_qos(prefetch_count=10)
    low = consume_into(conn, low_ch, queue)
    high = consume_into(conn, high_ch, queue, arguments={"x-priority": 5})
    for i in range(3):
        ch.basic_publish(exchange="", routing_key=queue, body=f"m{i}".encode())
    pump_until(lambda: len(high) + len(low) == 3, conn, what="three deliveries")
    assert high.texts == ["m0"]
    assert low.texts == ["m1", "m2"]

    # Once the high-priority consumer has room again, it is preferred again.
    high_ch.basic_ack(delivery_tag=high.deliveries[0].method.delivery_tag)
    ch.basic_publish(exchange="", routing_key=queue, body=b"m3")
    pump_until(lambda: len(high) == 2, conn, what="m3 to the high-priority consumer")
    assert high.texts == ["m0", "m3"]
    assert low.texts == ["m1", "m2"]


def test_consumer_priority_must_be_an_integer(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    queue = names.queue("bad-priority")
    ch.queue_declare(queue=queue)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.basic_consume(queue=queue, on_message_callback=lambda *a: None, arguments={"x-priority": "high"})
    assert exc.value.reply_code == 406
    assert exc.value.reply_text == reply_text(
        f"PRECONDITION_FAILED - invalid arg 'x-priority' for queue '{queue}' in vhost '{VHOST}': "
        '"expected integer, got longstr"'
    )
    assert conn.is_open


# -------------------------------------------- 7. single active consumer --


def test_single_active_consumer_first_consumer_gets_all_until_it_cancels(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    queue = names.queue("sac")
    ch.queue_declare(queue=queue, arguments={"x-single-active-consumer": True})
    first_ch, second_ch = conn.channel(), conn.channel()
    first = consume_into(conn, first_ch, queue, auto_ack=True)
    second = consume_into(conn, second_ch, queue, auto_ack=True)
    assert ch.queue_declare(queue=queue, passive=True).method.consumer_count == 2

    for i in range(3):
        ch.basic_publish(exchange="", routing_key=queue, body=f"a{i}".encode())
    publish_end_markers(ch, [queue])
    pump_until(lambda: received_before_marker(first) is not None, conn, what="end marker at the first consumer")
    second_ch.basic_qos(prefetch_count=0)  # a round trip on the second consumer's channel
    drain(conn)
    assert received_before_marker(first) == ["a0", "a1", "a2"]
    assert second.texts == []

    first_ch.basic_cancel(first_ch.consumer_tags[0])
    for i in range(2):
        ch.basic_publish(exchange="", routing_key=queue, body=f"b{i}".encode())
    publish_end_markers(ch, [queue])
    pump_until(lambda: received_before_marker(second) is not None, conn, what="end marker at the second consumer")
    assert received_before_marker(second) == ["b0", "b1"]
    assert first.texts == ["a0", "a1", "a2", END_MARKER]


def test_single_active_consumer_unacked_messages_go_to_the_next_consumer(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    queue = names.queue("sac-takeover")
    ch.queue_declare(queue=queue, arguments={"x-single-active-consumer": True})
    first_ch, second_ch = conn.channel(), conn.channel()
    first = consume_into(conn, first_ch, queue)  # manual ack, never acks
    second = consume_into(conn, second_ch, queue, auto_ack=True)
    ch.basic_publish(exchange="", routing_key=queue, body=b"x")
    ch.basic_publish(exchange="", routing_key=queue, body=b"y")
    pump_until(lambda: len(first) == 2, conn, what="two deliveries to the active consumer")
    assert [d.method.redelivered for d in first.deliveries] == [False, False]

    first_ch.close()  # its unacked messages are requeued, to the new active consumer
    pump_until(lambda: len(second) == 2, conn, what="the requeued messages at the second consumer")
    assert second.texts == ["x", "y"]
    assert [d.method.redelivered for d in second.deliveries] == [True, True]


# ------------------------------------------ 8. exchanges: AE, e2e, CC/BCC --


def test_alternate_exchange_receives_unroutable_messages(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    ae = names.exchange("ae")
    ch.exchange_declare(exchange=ae, exchange_type="fanout")
    exchange = names.exchange("main")
    ch.exchange_declare(exchange=exchange, exchange_type="direct", arguments={"alternate-exchange": ae})
    unrouted = names.queue("unrouted")
    routed = names.queue("routed")
    ch.queue_declare(queue=unrouted)
    ch.queue_declare(queue=routed)
    ch.queue_bind(queue=unrouted, exchange=ae)
    ch.queue_bind(queue=routed, exchange=exchange, routing_key="known")

    ch.basic_publish(exchange=exchange, routing_key="known", body=b"k", mandatory=True)
    # Mandatory, but routed by the alternate exchange: acked, not returned.
    ch.basic_publish(exchange=exchange, routing_key="unknown", body=b"u", mandatory=True)

    method, _, body = ch.basic_get(queue=unrouted, auto_ack=True)
    assert body == b"u"
    # Delivered with the exchange and routing key it was published with.
    assert method.exchange == exchange
    assert method.routing_key == "unknown"
    assert ch.basic_get(queue=unrouted) == (None, None, None)
    assert [body for _, body in get_all(ch, routed)] == [b"k"]

    # An alternate exchange that does not exist routes nowhere.
    dangling = names.exchange("dangling")
    ch.exchange_declare(
        exchange=dangling, exchange_type="direct", arguments={"alternate-exchange": names.exchange("missing")}
    )
    with pytest.raises(pika.exceptions.UnroutableError) as exc:
        ch.basic_publish(exchange=dangling, routing_key="k", body=b"lost", mandatory=True)
    assert exc.value.messages[0].method.reply_code == 312
    assert exc.value.messages[0].method.reply_text == "NO_ROUTE"

    # The argument is part of the exchange's identity.
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.exchange_declare(exchange=exchange, exchange_type="direct")
    assert exc.value.reply_code == 406
    assert exc.value.reply_text == reply_text(
        f"PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '{exchange}' "
        f"in vhost '{VHOST}': received none but current is the value '{ae}' of type 'longstr'"
    )


def test_exchange_to_exchange_bindings(broker, names):
    ch = broker.connect().channel()
    ch.confirm_delivery()
    source = names.exchange("source")
    destination = names.exchange("destination")
    ch.exchange_declare(exchange=source, exchange_type="topic")
    ch.exchange_declare(exchange=destination, exchange_type="fanout")
    queue = names.queue("sink")
    ch.queue_declare(queue=queue)
    ch.queue_bind(queue=queue, exchange=destination)
    ch.exchange_bind(destination=destination, source=source, routing_key="orders.*")

    ch.basic_publish(exchange=source, routing_key="orders.new", body=b"match")
    ch.basic_publish(exchange=source, routing_key="invoices.new", body=b"no match")
    got = get_all(ch, queue)
    assert [body for _, body in got] == [b"match"]

    # Reaching a queue by two paths (directly and through the bound exchange)
    # still delivers one copy.
    ch.queue_bind(queue=queue, exchange=source, routing_key="orders.*")
    ch.basic_publish(exchange=source, routing_key="orders.dup", body=b"once")
    assert [body for _, body in get_all(ch, queue)] == [b"once"]
    ch.queue_unbind(queue=queue, exchange=source, routing_key="orders.*")

    ch.exchange_unbind(destination=destination, source=source, routing_key="orders.*")
    ch.basic_publish(exchange=source, routing_key="orders.new", body=b"after unbind")
    assert get_all(ch, queue) == []


def test_exchange_bind_to_missing_source_is_404(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    destination = names.exchange("destination")
    ch.exchange_declare(exchange=destination, exchange_type="fanout")
    missing = names.exchange("missing")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.exchange_bind(destination=destination, source=missing, routing_key="k")
    assert exc.value.reply_code == 404
    assert exc.value.reply_text == reply_text(f"NOT_FOUND - no exchange '{missing}' in vhost '{VHOST}'")


def test_cc_and_bcc_headers_route_extra_copies(broker, names):
    ch = broker.connect().channel()
    ch.confirm_delivery()
    exchange = names.exchange("direct")
    ch.exchange_declare(exchange=exchange, exchange_type="direct")
    main, cc, bcc = names.queue("main"), names.queue("cc"), names.queue("bcc")
    for queue, key in ((main, "main"), (cc, "cc"), (bcc, "bcc")):
        ch.queue_declare(queue=queue)
        ch.queue_bind(queue=queue, exchange=exchange, routing_key=key)

    ch.basic_publish(
        exchange=exchange,
        routing_key="main",
        body=b"hello",
        properties=pika.BasicProperties(headers={"CC": ["cc"], "BCC": ["bcc"], "other": 1}),
    )
    for queue in (main, cc, bcc):
        method, props, body = ch.basic_get(queue=queue, auto_ack=True)
        assert body == b"hello", queue
        # Every copy shows the routing key it was published with, keeps CC
        # and has BCC removed.
        assert method.exchange == exchange
        assert method.routing_key == "main"
        assert props.headers == {"CC": ["cc"], "other": 1}
        assert ch.basic_get(queue=queue) == (None, None, None)

    # Through the default exchange, BCC only: the header table is left empty.
    ch.basic_publish(
        exchange="", routing_key=main, body=b"hello again", properties=pika.BasicProperties(headers={"BCC": [bcc]})
    )
    for queue in (main, bcc):
        method, props, body = ch.basic_get(queue=queue, auto_ack=True)
        assert body == b"hello again"
        assert method.routing_key == main
        assert props.headers == {}
    assert ch.basic_get(queue=cc) == (None, None, None)


# ------------------------------------------------- 9. direct reply-to --

REPLY_TO = "amq.rabbitmq.reply-to"


def test_direct_reply_to_round_trip(broker, names):
    server_conn = broker.connect()
    server = server_conn.channel()
    requests_queue = names.queue("rpc")
    server.queue_declare(queue=requests_queue)
    seen = []

    def serve(channel, method, properties, body):
        seen.append(properties)
        channel.basic_publish(
            exchange="",
            routing_key=properties.reply_to,
            body=b"reply to " + body,
            properties=pika.BasicProperties(correlation_id=properties.correlation_id, headers={"served": "yes"}),
        )
        channel.basic_ack(delivery_tag=method.delivery_tag)

    server.basic_consume(queue=requests_queue, on_message_callback=serve)

    client_conn = broker.connect()
    client = client_conn.channel()
    replies = consume_into(client_conn, client, REPLY_TO, auto_ack=True)
    # The pseudo-queue can be checked with a passive declare.
    assert client.queue_declare(queue=REPLY_TO, passive=True).method.queue == REPLY_TO
    for i in range(3):
        client.basic_publish(
            exchange="",
            routing_key=requests_queue,
            body=f"req {i}".encode(),
            properties=pika.BasicProperties(reply_to=REPLY_TO, correlation_id=f"c{i}"),
        )
    pump_until(lambda: len(replies) == 3, client_conn, server_conn, what="three replies")

    # The server sees a per-channel address, the same for every request.
    addresses = {p.reply_to for p in seen}
    assert len(addresses) == 1
    (address,) = addresses
    assert address.startswith(REPLY_TO + "."), address
    assert len(address) > len(REPLY_TO) + 1
    assert [p.correlation_id for p in seen] == ["c0", "c1", "c2"]

    assert replies.texts == ["reply to req 0", "reply to req 1", "reply to req 2"]
    for i, reply in enumerate(replies.deliveries):
        assert reply.method.exchange == ""
        assert reply.method.routing_key == address
        assert reply.method.redelivered is False
        assert reply.properties.correlation_id == f"c{i}"
        assert reply.properties.headers == {"served": "yes"}

    # A reply to an address that does not exist is dropped (returned if mandatory),
    # without closing the server's channel.
    server.confirm_delivery()
    server.basic_publish(exchange="", routing_key=REPLY_TO + ".no-such-address", body=b"x")
    with pytest.raises(pika.exceptions.UnroutableError) as exc:
        server.basic_publish(exchange="", routing_key=REPLY_TO + ".no-such-address", body=b"x", mandatory=True)
    assert exc.value.messages[0].method.reply_code == 312
    assert exc.value.messages[0].method.reply_text == "NO_ROUTE"
    assert server.is_open


def test_direct_reply_to_consumer_cannot_ack(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.basic_consume(queue=REPLY_TO, on_message_callback=lambda *a: None, auto_ack=False)
    assert exc.value.reply_code == 406
    assert exc.value.reply_text == "PRECONDITION_FAILED - reply consumer cannot acknowledge"
    assert conn.is_open


def test_direct_reply_to_only_one_consumer_per_channel(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.basic_consume(queue=REPLY_TO, on_message_callback=lambda *a: None, auto_ack=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.basic_consume(queue=REPLY_TO, on_message_callback=lambda *a: None, auto_ack=True)
    assert exc.value.reply_code == 406
    assert exc.value.reply_text == "PRECONDITION_FAILED - reply consumer already set"


def test_direct_reply_to_publish_without_reply_consumer_is_406(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    queue = names.queue("requests")
    ch.queue_declare(queue=queue)
    ch.basic_publish(
        exchange="", routing_key=queue, body=b"who answers?", properties=pika.BasicProperties(reply_to=REPLY_TO)
    )
    # basic.publish has no reply; the channel error shows up on the next synchronous call.
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_declare(queue=queue, passive=True)
    assert exc.value.reply_code == 406
    assert exc.value.reply_text == "PRECONDITION_FAILED - fast reply consumer does not exist"
    assert conn.is_open
    # The request was not enqueued.
    assert message_count(conn.channel(), queue) == 0


# ------------------------------------------------ 10. argument validation --


@pytest.mark.parametrize(
    "arguments, durable, expected",
    [
        ({"x-max-length": -1}, False, "invalid arg 'x-max-length' for queue '{q}' in vhost '{v}': {{value_negative,-1}}"),
        ({"x-max-length-bytes": -1}, False, "invalid arg 'x-max-length-bytes' for queue '{q}' in vhost '{v}': {{value_negative,-1}}"),
        (
            {"x-message-ttl": "abc"},
            False,
            "invalid arg 'x-message-ttl' for queue '{q}' in vhost '{v}': \"expected integer, got longstr\"",
        ),
        ({"x-message-ttl": -5}, False, "invalid arg 'x-message-ttl' for queue '{q}' in vhost '{v}': {{value_negative,-5}}"),
        ({"x-expires": 0}, False, "invalid arg 'x-expires' for queue '{q}' in vhost '{v}': {{value_zero,0}}"),
        ({"x-max-priority": 300}, False, "invalid arg 'x-max-priority' for queue '{q}' in vhost '{v}': {{max_value_exceeded,300}}"),
        ({"x-overflow": "bogus"}, False, "invalid arg 'x-overflow' for queue '{q}' in vhost '{v}': invalid_overflow"),
        (
            {"x-single-active-consumer": "yes"},
            False,
            "invalid arg 'x-single-active-consumer' for queue '{q}' in vhost '{v}': {{unacceptable_type,longstr}}",
        ),
        (
            {"x-dead-letter-routing-key": "k"},
            False,
            "invalid arg 'x-dead-letter-routing-key' for queue '{q}' in vhost '{v}': routing_key_but_no_dlx_defined",
        ),
        (
            {"x-queue-type": "bogus"},
            False,
            "invalid arg 'x-queue-type' for queue '{q}' in vhost '{v}': \"unsupported queue type 'bogus'\"",
        ),
        ({"x-queue-type": "quorum"}, False, "invalid property 'non-durable' for queue '{q}' in vhost '{v}'"),
    ],
    ids=[
        "max-length-negative",
        "max-length-bytes-negative",
        "message-ttl-string",
        "message-ttl-negative",
        "expires-zero",
        "max-priority-300",
        "overflow-bogus",
        "single-active-consumer-string",
        "dlrk-without-dlx",
        "queue-type-bogus",
        "quorum-non-durable",
    ],
)
def test_invalid_queue_argument_is_406(broker, names, arguments, durable, expected):
    conn = broker.connect()
    ch = conn.channel()
    queue = names.queue("invalid")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_declare(queue=queue, durable=durable, arguments=arguments)
    assert exc.value.reply_code == 406
    assert exc.value.reply_text == reply_text("PRECONDITION_FAILED - " + expected.format(q=queue, v=VHOST))
    assert conn.is_open
    # Nothing was created.
    assert not queue_exists(conn, queue)


def test_inequivalent_max_length_on_redeclare_is_406(broker, names):
    conn = broker.connect()
    queue = names.queue("limited")
    ch = conn.channel()
    ch.queue_declare(queue=queue, arguments={"x-max-length": 10})
    ch.queue_declare(queue=queue, arguments={"x-max-length": 10})  # same: fine
    ch.queue_declare(queue=queue, passive=True)  # passive ignores arguments
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_declare(queue=queue, arguments={"x-max-length": 20})
    assert exc.value.reply_code == 406
    assert exc.value.reply_text == reply_text(
        f"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{queue}' in vhost '{VHOST}': "
        "received '20' but current is '10'"
    )
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_declare(queue=queue)
    assert exc.value.reply_code == 406
    assert exc.value.reply_text == reply_text(
        f"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{queue}' in vhost '{VHOST}': "
        "received none but current is the value '10' of type 'signedint'"
    )
    assert conn.is_open


def test_unknown_arguments_are_accepted_and_not_compared(broker, names):
    ch = broker.connect().channel()
    queue = names.queue("unknown-args")
    ch.queue_declare(queue=queue, arguments={"x-totally-unknown": "v", "my-arg": 1})
    ch.queue_declare(queue=queue, arguments={"x-totally-unknown": "w", "my-arg": 2})
    ch.queue_declare(queue=queue)
    exchange = names.exchange("unknown-args")
    ch.exchange_declare(exchange=exchange, exchange_type="direct", arguments={"x-whatever": True})
    ch.exchange_declare(exchange=exchange, exchange_type="direct")
    ch.confirm_delivery()
    ch.queue_bind(queue=queue, exchange=exchange, routing_key="k")
    ch.basic_publish(exchange=exchange, routing_key="k", body=b"works")
    assert [body for _, body in get_all(ch, queue)] == [b"works"]


# ---------------------------------------------------- 11. quorum queues --


def declare_quorum(channel, queue, **extra):
    channel.queue_declare(queue=queue, durable=True, arguments={"x-queue-type": "quorum", **extra})


def test_quorum_queue_delivery_count_and_delivery_limit(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    dlq = declare_dead_letter_queue(ch, names)
    queue = names.queue("quorum")
    declare_quorum(
        ch, queue, **{"x-delivery-limit": 2, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
    )
    ch.basic_publish(
        exchange="", routing_key=queue, body=b"poison", properties=pika.BasicProperties(headers={"app": 1})
    )

    deliveries = []

    def always_reject(channel, method, properties, body):
        deliveries.append((method.redelivered, properties.headers))
        channel.basic_reject(delivery_tag=method.delivery_tag, requeue=True)

    consumer_ch = conn.channel()
    consumer_ch.basic_qos(prefetch_count=1)
    consumer_ch.basic_consume(queue=queue, on_message_callback=always_reject)
    dead = consume_into(conn, conn.channel(), dlq, auto_ack=True)
    pump_until(lambda: len(dead) == 1, conn, what="the message to be dead-lettered at the delivery limit")

    # The first delivery carries no count; each redelivery counts the earlier
    # failed deliveries. With a limit of 2 the message is delivered 3 times.
    assert deliveries == [
        (False, {"app": 1}),
        (True, {"app": 1, "x-delivery-count": 1}),
        (True, {"app": 1, "x-delivery-count": 2}),
    ]
    for _, headers in deliveries[1:]:
        assert_long(headers["x-delivery-count"])

    msg = dead.deliveries[0]
    assert msg.body == b"poison"
    assert msg.method.routing_key == dlq
    assert msg.method.redelivered is False
    assert without_x_death(msg.properties.headers) == {
        "app": 1,
        "x-first-death-exchange": "",
        "x-first-death-queue": queue,
        "x-first-death-reason": "delivery_limit",
    }
    assert x_death_without_time(msg.properties.headers) == [
        {"count": 1, "reason": "delivery_limit", "queue": queue, "exchange": "", "routing-keys": [queue]},
    ]
    assert message_count(ch, queue) == 0


def test_quorum_queue_delivery_count_on_nack_get_and_channel_close(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    queue = names.queue("quorum-get")
    declare_quorum(ch, queue)
    ch.basic_publish(exchange="", routing_key=queue, body=b"m")

    # basic.get shows the count from the first delivery on, starting at 0.
    counts = []
    for _ in range(3):
        method, props, body = ch.basic_get(queue=queue)
        assert body == b"m"
        counts.append((method.redelivered, props.headers))
        ch.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
    assert counts == [
        (False, {"x-delivery-count": 0}),
        (True, {"x-delivery-count": 1}),
        (True, {"x-delivery-count": 2}),
    ]
    for _, headers in counts:
        assert_long(headers["x-delivery-count"])
    method, props, _ = ch.basic_get(queue=queue)
    ch.basic_ack(delivery_tag=method.delivery_tag)

    # A message requeued because its channel closed counts as a failed delivery too.
    ch.basic_publish(exchange="", routing_key=queue, body=b"n")
    other = conn.channel()
    method, props, _ = other.basic_get(queue=queue)
    assert props.headers == {"x-delivery-count": 0}
    other.close()
    method, props, body = ch.basic_get(queue=queue)
    assert body == b"n"
    assert method.redelivered is True
    assert props.headers == {"x-delivery-count": 1}
    ch.basic_ack(delivery_tag=method.delivery_tag)
