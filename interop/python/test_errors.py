"""Error behaviour as a pika application sees it: which exception, which reply
code, which reply text, and what state the channel/connection is left in."""

import pika
import pika.exceptions
import pytest

from support import Inbox, pump_until


def test_passive_declare_of_missing_queue_is_404(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    missing = names.queue("does-not-exist")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_declare(queue=missing, passive=True)
    assert exc.value.reply_code == 404
    assert exc.value.reply_text.startswith("NOT_FOUND - no queue"), exc.value.reply_text
    assert f"'{missing}'" in exc.value.reply_text
    # Only the channel is closed; the connection carries on.
    assert ch.is_closed
    assert conn.is_open
    ch2 = conn.channel()
    ch2.queue_declare(queue=missing)
    assert ch2.queue_declare(queue=missing, passive=True).method.queue == missing


def test_passive_declare_of_missing_exchange_is_404(broker, names):
    ch = broker.connect().channel()
    missing = names.exchange("nope")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.exchange_declare(exchange=missing, exchange_type="direct", passive=True)
    assert exc.value.reply_code == 404
    assert exc.value.reply_text.startswith("NOT_FOUND - no exchange"), exc.value.reply_text


def test_mandatory_unroutable_publish_on_confirm_channel(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    nowhere = names.queue("nobody-home")
    with pytest.raises(pika.exceptions.UnroutableError) as exc:
        ch.basic_publish(exchange="", routing_key=nowhere, body=b"lost?", mandatory=True)
    (returned,) = exc.value.messages
    assert returned.method.reply_code == 312
    assert returned.method.reply_text == "NO_ROUTE"
    assert returned.method.exchange == ""
    assert returned.method.routing_key == nowhere
    assert returned.body == b"lost?"

    # Same through a named exchange with no matching binding.
    exchange = names.exchange("direct")
    ch.exchange_declare(exchange=exchange, exchange_type="direct")
    with pytest.raises(pika.exceptions.UnroutableError) as exc:
        ch.basic_publish(exchange=exchange, routing_key="unbound", body=b"x", mandatory=True)
    assert exc.value.messages[0].method.exchange == exchange

    # A return is not a channel error: the channel stays usable, and
    # non-mandatory unroutable messages are silently dropped (and confirmed).
    assert ch.is_open
    ch.basic_publish(exchange="", routing_key=nowhere, body=b"dropped")
    queue = names.queue("somebody-home")
    ch.queue_declare(queue=queue)
    ch.basic_publish(exchange="", routing_key=queue, body=b"delivered", mandatory=True)
    assert ch.queue_declare(queue=queue, passive=True).method.message_count == 1


def test_redeclare_with_different_durable_is_406(broker, names):
    conn = broker.connect()
    queue = names.queue("durable")
    ch = conn.channel()
    ch.queue_declare(queue=queue, durable=True)
    ch.queue_declare(queue=queue, durable=True)  # same arguments: fine
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_declare(queue=queue, durable=False)
    assert exc.value.reply_code == 406
    assert exc.value.reply_text.startswith("PRECONDITION_FAILED - inequivalent arg 'durable'"), exc.value.reply_text
    assert conn.is_open
    # The original queue is untouched.
    ch2 = conn.channel()
    ch2.queue_declare(queue=queue, durable=True)


def test_exchange_redeclare_with_different_type_is_406(broker, names):
    conn = broker.connect()
    exchange = names.exchange("typed")
    ch = conn.channel()
    ch.exchange_declare(exchange=exchange, exchange_type="direct")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.exchange_declare(exchange=exchange, exchange_type="fanout")
    assert exc.value.reply_code == 406
    assert exc.value.reply_text.startswith("PRECONDITION_FAILED - inequivalent arg 'type'"), exc.value.reply_text


def test_reject_with_requeue_redelivers(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    queue = names.queue("rejects")
    ch.queue_declare(queue=queue)
    ch.confirm_delivery()
    for body in (b"first", b"second"):
        ch.basic_publish(exchange="", routing_key=queue, body=body)

    inbox = Inbox()
    ch.basic_qos(prefetch_count=1)
    ch.basic_consume(queue=queue, on_message_callback=inbox)
    pump_until(lambda: len(inbox) == 1, conn, what="first delivery")
    first = inbox.deliveries[0]
    assert first.body == b"first"
    assert first.method.redelivered is False

    ch.basic_reject(delivery_tag=first.method.delivery_tag, requeue=True)
    pump_until(lambda: len(inbox) == 2, conn, what="redelivery after reject")
    again = inbox.deliveries[1]
    # The rejected message comes back first (it keeps its place in the queue),
    # flagged as redelivered, under a new delivery tag.
    assert again.body == b"first"
    assert again.method.redelivered is True
    assert again.method.delivery_tag != first.method.delivery_tag
    ch.basic_ack(delivery_tag=again.method.delivery_tag)

    pump_until(lambda: len(inbox) == 3, conn, what="second message")
    nxt = inbox.deliveries[2]
    assert nxt.body == b"second"
    assert nxt.method.redelivered is False
    # Rejected without requeue: dropped.
    ch.basic_reject(delivery_tag=nxt.method.delivery_tag, requeue=False)
    check = conn.channel()
    pump_until(
        lambda: check.queue_declare(queue=queue, passive=True).method.message_count == 0,
        conn,
        what="queue to be empty",
    )
    assert len(inbox) == 3


def test_basic_get_and_nack_requeue(broker, names):
    ch = broker.connect().channel()
    queue = names.queue("get")
    ch.queue_declare(queue=queue)
    assert ch.basic_get(queue=queue) == (None, None, None)  # get-empty
    ch.confirm_delivery()
    ch.basic_publish(
        exchange="",
        routing_key=queue,
        body=b"payload",
        properties=pika.BasicProperties(content_type="text/plain", headers={"k": "v"}, message_id="m-1"),
    )
    method, props, body = ch.basic_get(queue=queue)
    assert body == b"payload"
    assert method.redelivered is False
    assert method.message_count == 0
    assert props.content_type == "text/plain"
    assert props.headers == {"k": "v"}
    assert props.message_id == "m-1"
    ch.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
    method2, props2, body2 = ch.basic_get(queue=queue, auto_ack=True)
    assert body2 == b"payload"
    assert method2.redelivered is True
    assert props2.headers == {"k": "v"}
    assert ch.basic_get(queue=queue) == (None, None, None)


def test_ack_of_unknown_delivery_tag_is_406(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.basic_ack(delivery_tag=42)
    # basic.ack has no reply; the channel error shows up on the next synchronous call.
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_declare(queue=names.queue("after-bad-ack"))
    assert exc.value.reply_code == 406
    assert exc.value.reply_text == "PRECONDITION_FAILED - unknown delivery tag 42"


def test_publish_to_missing_exchange_closes_channel_404(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    missing = names.exchange("missing")
    ch.basic_publish(exchange=missing, routing_key="k", body=b"x")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_declare(queue=names.queue("after-bad-publish"))
    assert exc.value.reply_code == 404
    assert exc.value.reply_text.startswith(f"NOT_FOUND - no exchange '{missing}'"), exc.value.reply_text
    assert conn.is_open


def test_exclusive_queue_is_locked_to_its_connection(broker, names):
    owner = broker.connect().channel()
    qname = owner.queue_declare(queue="", exclusive=True).method.queue
    other = broker.connect().channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        other.basic_consume(queue=qname, on_message_callback=lambda *a: None)
    assert exc.value.reply_code == 405
    assert exc.value.reply_text.startswith("RESOURCE_LOCKED"), exc.value.reply_text
