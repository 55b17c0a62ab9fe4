"""Definitions move between Debian's RabbitMQ and Warren both ways (issue #13).

Export from RabbitMQ (rabbitmqctl export_definitions), import into a fresh Warren data
directory (warren definitions import), log in there with the RabbitMQ password and find the
queues, bindings and permissions; export from Warren (warren definitions export) and import
into RabbitMQ (rabbitmqctl import_definitions), and log in there again.

Needs: INTEROP_WARREN_BIN (the broker binary), rabbitmqctl and a RabbitMQ on RABBITMQ_PORT (5672).
"""

import json
import os
import socket
import subprocess
import tempfile
import time

import pika
import pytest

WARREN = os.environ["INTEROP_WARREN_BIN"]
RABBIT = f"127.0.0.1:{os.environ.get('RABBITMQ_PORT', '5672')}"
VHOST, USER, PASSWORD = "rt-shop", "rt-alice", "alice-pw"


def rabbitmqctl(*args, check=True, stdin=None):
    return subprocess.run(
        ["rabbitmqctl", *args], check=check, capture_output=True, text=True, input=stdin
    )


def forget_test_objects():
    rabbitmqctl("delete_vhost", VHOST, check=False)
    rabbitmqctl("delete_user", USER, check=False)


def connect(address, user=USER, password=PASSWORD, vhost=VHOST):
    host, port = address.rsplit(":", 1)
    params = pika.ConnectionParameters(
        host=host,
        port=int(port),
        virtual_host=vhost,
        credentials=pika.PlainCredentials(user, password),
    )
    return pika.BlockingConnection(params)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "warren exited at start-up"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("warren did not listen within 30 s")


def route_one(address, body):
    """Publishes through the exchange and gets the message back from the bound queue."""
    conn = connect(address)
    ch = conn.channel()
    ch.queue_declare("rt-orders", passive=True)
    ch.basic_publish("rt-events", "order.created", body)
    for _ in range(100):
        method, _props, got = ch.basic_get("rt-orders", auto_ack=True)
        if method is not None:
            conn.close()
            return got
        time.sleep(0.05)
    conn.close()
    raise AssertionError("the message did not arrive through the imported binding")


def assert_refusals(address):
    """The same refusals, with the same texts, from either broker."""
    conn = connect(address)
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        ch.queue_declare("billing")
    assert refused.value.reply_code == 403
    assert refused.value.reply_text == (
        f"ACCESS_REFUSED - access to queue 'billing' in vhost '{VHOST}' "
        f"refused for user '{USER}'"
    )
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        ch.basic_publish("amq.topic", "other.key", b"x")
    assert refused.value.reply_text == (
        f"ACCESS_REFUSED - access to topic 'other.key' in exchange 'amq.topic' "
        f"in vhost '{VHOST}' refused for user '{USER}'"
    )
    conn.close()


@pytest.fixture
def rabbit_objects():
    forget_test_objects()
    yield
    forget_test_objects()


def test_definitions_round_trip(tmp_path, rabbit_objects):
    # RabbitMQ: a vhost, a user with a password, permissions, a topic permission, and a
    # queue, an exchange and a binding declared by that user.
    rabbitmqctl("add_vhost", VHOST)
    rabbitmqctl("add_user", USER, PASSWORD)
    rabbitmqctl("set_permissions", "-p", VHOST, USER, "^rt-", "^(rt-|amq\\.topic$)", "^rt-")
    rabbitmqctl("set_topic_permissions", "-p", VHOST, USER, "amq.topic", "^rt\\.", ".*")
    conn = connect(RABBIT)
    ch = conn.channel()
    ch.exchange_declare("rt-events", "topic", durable=True)
    ch.queue_declare("rt-orders", durable=True, arguments={"x-message-ttl": 60000})
    ch.queue_bind("rt-orders", "rt-events", "order.#")
    conn.close()
    assert_refusals(RABBIT)
    from_rabbit = tmp_path / "from-rabbitmq.json"
    # Through standard output: the node (another OS user) writes files, not rabbitmqctl.
    from_rabbit.write_text(rabbitmqctl("export_definitions", "-").stdout)

    # Warren: import into a fresh data directory, then serve it.
    data = tmp_path / "data"
    imported = subprocess.run(
        [WARREN, "--data-dir", str(data), "definitions", "import", str(from_rabbit)],
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    port = free_port()
    warren = subprocess.Popen(
        [WARREN, "--port", str(port), "--management-port", "0", "--prometheus-port", "0", "--data-dir", str(data),
         "--log-level", "warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, warren)
        address = f"127.0.0.1:{port}"
        assert route_one(address, b"through warren") == b"through warren"
        assert_refusals(address)
    finally:
        warren.terminate()
        warren.wait(timeout=30)

    # Warren's export, imported into RabbitMQ after the originals are gone.
    from_warren = tmp_path / "from-warren.json"
    exported = subprocess.run(
        [WARREN, "--data-dir", str(data), "definitions", "export", str(from_warren)],
        capture_output=True,
        text=True,
    )
    assert exported.returncode == 0, exported.stderr
    defs = json.loads(from_warren.read_text())
    queue = next(q for q in defs["queues"] if q["name"] == "rt-orders")
    assert queue["arguments"] == {"x-message-ttl": 60000}
    forget_test_objects()
    # RabbitMQ's CLI runs as its own OS user: the file must be somewhere it can read.
    fd, readable = tempfile.mkstemp(prefix="warren-defs-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(from_warren.read_text())
        os.chmod(readable, 0o644)
        rabbitmqctl("import_definitions", readable)
    finally:
        os.unlink(readable)
    assert route_one(RABBIT, b"back in rabbitmq") == b"back in rabbitmq"
