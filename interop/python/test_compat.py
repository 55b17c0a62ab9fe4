"""Behaviours real clients tripped on (issue #11), as a pika application sees them. Each test
passes against RabbitMQ 3.10 (`interop/run --against ...`) and against Warren."""

import pika
import pika.exceptions
import pytest

from support import Inbox, pump_until, publish_end_markers, received_before_marker


def test_owner_redeclaring_its_exclusive_queue_without_exclusive_is_405(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    queue = names.queue("mine")
    ch.queue_declare(queue=queue, exclusive=True)
    ch.queue_declare(queue=queue, exclusive=True)  # the same declare: fine
    other = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        other.queue_declare(queue=queue, exclusive=False)
    assert exc.value.reply_code == 405
    assert exc.value.reply_text.startswith(
        "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue"
    ), exc.value.reply_text


def test_redeclaring_a_shared_queue_as_exclusive_is_405(broker, names):
    ch = broker.connect().channel()
    queue = names.queue("shared")
    ch.queue_declare(queue=queue)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_declare(queue=queue, exclusive=True)
    assert exc.value.reply_code == 405


@pytest.mark.parametrize("passive", [True, False])
def test_declaring_the_default_exchange_is_403(broker, passive):
    conn = broker.connect()
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.exchange_declare(exchange="", exchange_type="direct", passive=passive)
    assert exc.value.reply_code == 403
    assert exc.value.reply_text == "ACCESS_REFUSED - operation not permitted on the default exchange"
    assert conn.is_open


def test_topic_empty_routing_key_has_no_words(broker, names):
    conn = broker.connect()
    ch = conn.channel()
    ch.confirm_delivery()
    exchange = names.exchange("topic")
    ch.exchange_declare(exchange=exchange, exchange_type="topic")
    patterns = {"empty": "", "hash": "#", "star": "*", "hash_star": "#.*", "star_hash": "*.#"}
    queues = {}
    for label, pattern in patterns.items():
        q = names.queue(label)
        ch.queue_declare(queue=q)
        ch.queue_bind(queue=q, exchange=exchange, routing_key=pattern)
        queues[label] = q
    for key in ["", ".", "a"]:
        ch.basic_publish(exchange=exchange, routing_key=key, body=f"<{key}>".encode())
    publish_end_markers(ch, queues.values())
    got = {}
    for label, q in queues.items():
        inbox = Inbox()
        ch.basic_consume(queue=q, on_message_callback=inbox, auto_ack=True)
        pump_until(lambda: received_before_marker(inbox) is not None, conn, what=f"marker on {label}")
        got[label] = received_before_marker(inbox)
    assert got == {
        "empty": ["<>"],
        "hash": ["<>", "<.>", "<a>"],
        "star": ["<a>"],
        "hash_star": ["<.>", "<a>"],
        "star_hash": ["<.>", "<a>"],
    }


def test_direct_reply_to_passive_declares(broker, names):
    """Spring's RabbitTemplate probes `amq.rabbitmq.reply-to` passively; a requester may check
    that a generated reply-to name still has its consumer. RabbitMQ 3.10 answers the probe
    with one consumer, a live generated name with one consumer (from another connection: on
    the consumer's own connection 3.10 fails with 541, which Warren does not copy), and an
    unknown one with 404."""
    conn = broker.connect()
    ch = conn.channel()
    probe = ch.queue_declare(queue="amq.rabbitmq.reply-to", passive=True).method
    assert (probe.message_count, probe.consumer_count) == (0, 1)
    ch.basic_consume(queue="amq.rabbitmq.reply-to", on_message_callback=lambda *a: None, auto_ack=True)
    queue = names.queue("requests")
    ch.queue_declare(queue=queue)
    ch.confirm_delivery()
    ch.basic_publish(
        exchange="", routing_key=queue, body=b"?",
        properties=pika.BasicProperties(reply_to="amq.rabbitmq.reply-to"),
    )
    method, properties, _ = ch.basic_get(queue=queue, auto_ack=True)
    assert method is not None
    generated = properties.reply_to
    assert generated.startswith("amq.rabbitmq.reply-to.")
    other = broker.connect().channel()
    ok = other.queue_declare(queue=generated, passive=True).method
    assert (ok.queue, ok.message_count, ok.consumer_count) == (generated, 0, 1)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        other.queue_declare(queue="amq.rabbitmq.reply-to.nobody", passive=True)
    assert exc.value.reply_code == 404
    assert exc.value.reply_text == "NOT_FOUND - no queue 'amq.rabbitmq.reply-to.nobody' in vhost '/'"


def test_empty_queue_name_means_the_last_declared_queue(broker):
    """Spec 1.7.2.3 and RabbitMQ: an empty queue name in bind, get, purge, consume and delete
    is the queue the channel declared last; with no such queue it is 404."""
    conn = broker.connect()
    ch = conn.channel()
    queue = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.queue_bind(queue="", exchange="amq.fanout")  # routing key "" too: the queue's name
    ch.confirm_delivery()
    ch.basic_publish(exchange="amq.fanout", routing_key="anything", body=b"via fanout")
    method, _, body = ch.basic_get(queue="", auto_ack=True)
    assert (method is not None, body) == (True, b"via fanout")
    ch.basic_publish(exchange="", routing_key=queue, body=b"to purge")
    assert ch.queue_purge(queue="").method.message_count == 1
    ch.queue_unbind(queue="", exchange="amq.fanout", routing_key=queue)
    assert ch.queue_delete(queue="").method.message_count == 0
    fresh = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        fresh.basic_get(queue="", auto_ack=True)
    assert exc.value.reply_code == 404
    assert exc.value.reply_text == "NOT_FOUND - no previously declared queue"


@pytest.mark.parametrize("value,text", [
    ("foo", 'Invalid x-match field value <<"foo">>; expected all, any, all-with-x, or any-with-x'),
    (5, "Invalid x-match field type signedint (value 5); expected longstr"),
])
def test_headers_binding_with_an_invalid_x_match_is_406(broker, value, text):
    ch = broker.connect().channel()
    queue = ch.queue_declare(queue="", exclusive=True).method.queue
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_bind(queue=queue, exchange="amq.headers", arguments={"x-match": value})
    assert exc.value.reply_code == 406
    assert exc.value.reply_text == "PRECONDITION_FAILED - " + text


def test_an_exclusive_queue_is_locked_for_unbind_from_another_connection(broker):
    owner = broker.connect().channel()
    queue = owner.queue_declare(queue="", exclusive=True).method.queue
    owner.queue_bind(queue=queue, exchange="amq.fanout")
    other = broker.connect().channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        other.queue_unbind(queue=queue, exchange="amq.fanout")
    assert exc.value.reply_code == 405


def test_x_max_length_holds_when_a_message_is_requeued(broker, names):
    """drop-head applies after a requeue too: the requeued message is the oldest and goes."""
    ch = broker.connect().channel()
    queue = names.queue("max2")
    ch.queue_declare(queue=queue, arguments={"x-max-length": 2})
    ch.confirm_delivery()
    for body in (b"m0", b"m1"):
        ch.basic_publish(exchange="", routing_key=queue, body=body)
    first, _, _ = ch.basic_get(queue=queue)  # m0, unacked
    ch.basic_publish(exchange="", routing_key=queue, body=b"m2")
    ch.basic_nack(delivery_tag=first.delivery_tag, requeue=True)
    assert ch.queue_declare(queue=queue, passive=True).method.message_count == 2
    left = []
    while True:
        method, _, body = ch.basic_get(queue=queue, auto_ack=True)
        if method is None:
            break
        left.append(body)
    assert left == [b"m1", b"m2"]
