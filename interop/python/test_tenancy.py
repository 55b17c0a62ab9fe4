"""A non-guest user in its own vhost with narrow permissions (issue #13), as pika sees it.

The runner gives the broker interop/tenancy.json (or creates the same with rabbitmqctl):
vhost interop-tenant, user interop-user / interop-pass, configure and read '^it-', write
'^(it-|amq\\.default$)'. TENANT_URL points at it.
"""

import os
import uuid

import pika
import pytest

TENANT_URL = os.environ.get(
    "TENANT_URL", "amqp://interop-user:interop-pass@127.0.0.1:5672/interop-tenant"
)


def connect(url=TENANT_URL):
    return pika.BlockingConnection(pika.URLParameters(url))


def test_the_user_works_in_its_vhost_within_its_permissions():
    conn = connect()
    ch = conn.channel()
    queue = f"it-py-{uuid.uuid4().hex[:8]}"
    ch.queue_declare(queue, auto_delete=True)
    ch.basic_publish("", queue, b"tenant message")
    method, _props, body = ch.basic_get(queue, auto_ack=True)
    assert method is not None and body == b"tenant message"
    ch.queue_delete(queue)
    conn.close()


def test_a_queue_outside_the_permissions_is_refused_with_rabbitmqs_text():
    conn = connect()
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        ch.queue_declare("not-mine")
    assert refused.value.reply_code == 403
    assert refused.value.reply_text == (
        "ACCESS_REFUSED - access to queue 'not-mine' in vhost 'interop-tenant' "
        "refused for user 'interop-user'"
    )
    conn.close()


def test_another_vhost_is_refused_at_connection_open():
    other = TENANT_URL.rsplit("/", 1)[0] + "/%2F"
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as refused:
        connect(other)
    assert "NOT_ALLOWED - access to vhost '/' refused for user 'interop-user'" in str(
        refused.value
    )


def test_a_wrong_password_is_refused():
    wrong = TENANT_URL.replace("interop-pass", "wrong-pass")
    with pytest.raises(pika.exceptions.ProbableAuthenticationError) as refused:
        connect(wrong)
    assert "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN" in str(
        refused.value
    )
