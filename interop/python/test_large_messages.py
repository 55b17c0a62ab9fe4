"""Large messages from clients that fill body frames with frame_max octets of payload, 8 more
than the spec allows (rabbitpy, AMQPStorm): RabbitMQ accepts them, and so must Warren."""

import os
import uuid

import amqpstorm
import pytest
import rabbitpy

from support import AMQP_URL

SIZES = [1 << 20, 10 << 20]


def body_of(size):
    # Not one repeated byte, so that a misplaced frame shows.
    return os.urandom(4096) * (size // 4096)


@pytest.mark.parametrize("size", SIZES, ids=["1MiB", "10MiB"])
def test_rabbitpy_publishes_and_gets_large_messages(size):
    queue = f"interop.py.large.rabbitpy.{uuid.uuid4().hex[:10]}"
    body = body_of(size)
    with rabbitpy.Connection(AMQP_URL) as conn:
        with conn.channel() as ch:
            q = rabbitpy.Queue(ch, queue)
            q.declare()
            ch.enable_publisher_confirms()
            try:
                assert rabbitpy.Message(ch, body).publish("", queue), "nacked"
                got = q.get(acknowledge=False)
                assert got is not None, "the message did not arrive"
                assert len(got.body) == size
                assert got.body == body
            finally:
                q.delete()


@pytest.mark.parametrize("size", SIZES, ids=["1MiB", "10MiB"])
def test_amqpstorm_publishes_and_gets_large_messages(size):
    queue = f"interop.py.large.amqpstorm.{uuid.uuid4().hex[:10]}"
    body = body_of(size)
    conn = amqpstorm.UriConnection(AMQP_URL)
    try:
        ch = conn.channel()
        ch.queue.declare(queue)
        ch.confirm_deliveries()
        try:
            assert ch.basic.publish(body=body, routing_key=queue), "nacked"
            got = ch.basic.get(queue=queue, no_ack=True, auto_decode=False)
            assert got is not None, "the message did not arrive"
            assert len(got.body) == size
            assert got.body == body
        finally:
            ch.queue.delete(queue)
    finally:
        conn.close()
