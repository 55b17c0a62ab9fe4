"""rabbitmqadmin 2.x (rabbitmqadmin-ng, the Rust CLI), the real binary, against the
management API.

run-tests installs rabbitmqadmin 2.35.0 and passes its path in $RABBITMQADMIN (by hand,
the tests look in run-tests' cache folder, then on PATH). Every command runs as an
operator would script it: global options before the command group (--host, --port,
--username, --password, --non-interactive, and --vhost where needed), and the tests check
exit codes and what the command prints.

With --non-interactive, rabbitmqadmin prints tables without borders or headers: one line
per row, cells padded and separated by at least two spaces, an empty cell being only
spaces. `cells()` splits a row on runs of two or more spaces, so empty cells disappear;
the tests only read cells before the first column that can be empty, or trailing numeric
columns, or pick the columns with --columns.
"""

import json
import os
import re
import shutil
import subprocess
import urllib.parse

import pytest
import requests

from support import MANAGEMENT_URL, PASSWORD, TENANT_URL, USERNAME, Names, publish_confirmed, wait_for

RABBITMQADMIN_VERSION = "2.35.0"  # run-tests installs this one
# Where run-tests installs it by default (Debian's rabbitmq-server puts the old Python
# rabbitmqadmin 3.x on PATH, so PATH comes last).
_CACHED = os.path.join(
    os.environ.get("INTEROP_TOOLS_DIR")
    or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "warren-interop"),
    f"rabbitmqadmin-{RABBITMQADMIN_VERSION}", "bin", "rabbitmqadmin",
)
BINARY = os.environ.get("RABBITMQADMIN") or (_CACHED if os.access(_CACHED, os.X_OK) else shutil.which("rabbitmqadmin"))
_mgmt = urllib.parse.urlsplit(MANAGEMENT_URL)
GLOBAL_OPTIONS = [
    "--host", _mgmt.hostname or "127.0.0.1",
    "--port", str(_mgmt.port or 15672),
    "--username", USERNAME,
    "--password", PASSWORD,
    "--non-interactive",
]
# rabbitmqadmin reads RABBITMQADMIN_* variables; none from the caller's environment.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQADMIN_")}


@pytest.fixture(scope="module", autouse=True)
def _binary():
    if not BINARY:
        pytest.fail("rabbitmqadmin is not installed (interop/management/run-tests installs it)")
    version = subprocess.run([BINARY, "--version"], capture_output=True, text=True, env=ENV)
    assert version.stdout.strip() == f"rabbitmqadmin {RABBITMQADMIN_VERSION}", version


def admin(*args, vhost=None):
    """Runs rabbitmqadmin; returns the CompletedProcess (text output)."""
    cmd = [BINARY, *GLOBAL_OPTIONS, *(["--vhost", vhost] if vhost else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=ENV)


def ok(*args, vhost=None):
    """Runs rabbitmqadmin, asserts exit code 0 and returns its standard output."""
    r = admin(*args, vhost=vhost)
    assert r.returncode == 0, f"rabbitmqadmin {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def cells(line):
    return re.split(r"\s{2,}", line.strip())


def rows(output):
    return [cells(line) for line in output.splitlines() if line.strip()]


def row_where(output, **at):
    """The rows whose cell <i> equals v, for every c<i>=v given (c0 is the first cell)."""
    want = {int(k[1:]): v for k, v in at.items()}
    return [r for r in rows(output) if all(len(r) > i and r[i] == v for i, v in want.items())]


def queue_counts(queue, vhost=None):
    """(messages, unacknowledged, consumers) from `queues list --columns ...`, or None if
    the queue is not listed."""
    out = ok("queues", "list", "--columns", "name,message_count,unacknowledged_message_count,consumer_count",
             vhost=vhost)
    found = row_where(out, c0=queue)
    return tuple(int(c) for c in found[0][1:]) if found else None


def test_show_overview():
    out = ok("show", "overview")
    table = {}
    for line in out.splitlines():
        key, _, value = line.strip().partition("  ")
        table[key.strip()] = value.strip()
    assert table.get("RabbitMQ version"), out
    assert table.get("Product name"), out
    for key in ("Connections (total)", "Queues and streams (total)", "Messages (total)", "Consumers (total)"):
        assert re.fullmatch(r"\d+", table.get(key, "")), f"{key!r} in\n{out}"


def reference_gap(path, field):
    """rabbitmqadmin 2.x requires some fields that RabbitMQ 3.10 does not send yet (the
    client follows current RabbitMQ). When the broker is RabbitMQ itself (not Warren, which
    must send them) and its GET <path> lacks <field>, returns why the command cannot work."""
    auth = (USERNAME, PASSWORD)
    overview = requests.get(f"{MANAGEMENT_URL}/api/overview", auth=auth, timeout=5).json()
    if overview.get("product_name") != "RabbitMQ":
        return None
    items = requests.get(f"{MANAGEMENT_URL}{path}", auth=auth, timeout=5).json()
    if items and all(field not in item for item in items):
        return (f"RabbitMQ {overview.get('rabbitmq_version')}: GET {path} has no '{field}', "
                f"which rabbitmqadmin {RABBITMQADMIN_VERSION}'s client requires")
    return None


def ok_unless_reference_gap(args, path, field):
    """ok(*args), except that on RabbitMQ missing <field> in GET <path> the test is an
    expected failure (see reference_gap)."""
    r = admin(*args)
    if r.returncode != 0 and "error decoding response body" in r.stderr:
        reason = reference_gap(path, field)
        if reason:
            pytest.xfail(reason)
    assert r.returncode == 0, f"rabbitmqadmin {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_list_nodes():
    node = requests.get(f"{MANAGEMENT_URL}/api/overview", auth=(USERNAME, PASSWORD), timeout=5).json()["node"]
    out = ok_unless_reference_gap(("list", "nodes"), "/api/nodes", "being_drained")
    # name, uptime, ...
    assert [r[0] for r in rows(out)] == [node], out


def test_health_check_local_alarms():
    out = ok("health_check", "local_alarms")
    assert "health check passed" in out.lower()


def test_queue_exchange_binding_message_lifecycle(names):
    queue = names.queue("orders")
    exchange = names.exchange("events")

    ok("declare", "queue", "--name", queue, "--durable", "true")
    ok("declare", "exchange", "--name", exchange, "--type", "topic")
    ok("declare", "binding", "--source", exchange, "--destination-type", "queue",
       "--destination", queue, "--routing-key", "order.*")

    # Listing: the queue (durable, no messages), the exchange (topic), the binding.
    listed = row_where(ok("list", "queues"), c0=queue)
    assert len(listed) == 1 and listed[0][1:4] == ["/", "classic", "true"], listed
    assert row_where(ok("list", "exchanges"), c0=exchange)[0][1:4] == ["/", "topic", "true"]
    bindings = row_where(ok("list", "bindings"), c1=exchange, c2=queue)
    assert [b[:5] for b in bindings] == [["/", exchange, queue, "queue", "order.*"]], bindings

    # Publish through the exchange: routed by the topic binding.
    out = ok("publish", "message", "--exchange", exchange, "--routing-key", "order.created",
             "--payload", "hello from rabbitmqadmin")
    assert "Message published and routed successfully" in out, out
    wait_for(lambda: queue_counts(queue), lambda c: c is not None and c[0] == 1,
             what="`queues list` to show 1 message")
    # `list queues`: the last two cells are the message count and the unacknowledged count.
    assert row_where(ok("list", "queues"), c0=queue)[0][-2:] == ["1", "0"]

    # get with ack_requeue_true: the message is shown and stays in the queue.
    got = rows(ok("get", "messages", "--queue", queue, "--ack-mode", "ack_requeue_true"))
    assert len(got) == 1, got
    # payload_bytes, redelivered, exchange, routing_key, message_count (left after this one)
    assert got[0][:5] == [str(len("hello from rabbitmqadmin")), "false", exchange, "order.created", "0"], got
    assert "hello from rabbitmqadmin" in got[0] and got[0][-1] == "string", got
    wait_for(lambda: queue_counts(queue), lambda c: c is not None and c[:2] == (1, 0),
             what="the requeued message to be counted again")

    # The definitions, while the queue, exchange and binding exist.
    defs = json.loads(ok("definitions", "export", "--stdout"))
    [q] = [q for q in defs["queues"] if q["name"] == queue]
    assert q["vhost"] == "/" and q["durable"] is True and q["auto_delete"] is False
    [x] = [x for x in defs["exchanges"] if x["name"] == exchange]
    assert x["type"] == "topic" and x["durable"] is True
    assert [(b["source"], b["destination_type"], b["routing_key"]) for b in defs["bindings"]
            if b["destination"] == queue and b["source"] == exchange] == [(exchange, "queue", "order.*")]

    # get with ack_requeue_false: shown again (now redelivered), and gone.
    got = rows(ok("get", "messages", "--queue", queue, "--ack-mode", "ack_requeue_false"))
    assert len(got) == 1 and got[0][1] == "true" and "hello from rabbitmqadmin" in got[0], got
    assert rows(ok("get", "messages", "--queue", queue, "--ack-mode", "ack_requeue_false")) == []
    wait_for(lambda: queue_counts(queue), lambda c: c is not None and c[:2] == (0, 0),
             what="`queues list` to show 0 messages")

    # Delete the binding: gone from the listing, and a publish is no longer routed.
    ok("delete", "binding", "--source", exchange, "--destination-type", "queue",
       "--destination", queue, "--routing-key", "order.*")
    assert row_where(ok("list", "bindings"), c1=exchange, c2=queue) == []
    out = ok("publish", "message", "--exchange", exchange, "--routing-key", "order.created", "--payload", "lost")
    assert "Message published but NOT routed" in out, out

    # Purge (two messages published straight to the queue), then delete.
    for payload in ("one", "two"):
        ok("publish", "message", "--routing-key", queue, "--payload", payload)
    wait_for(lambda: queue_counts(queue), lambda c: c is not None and c[0] == 2,
             what="`queues list` to show the 2 messages published to the default exchange")
    ok("purge", "queue", "--name", queue)
    wait_for(lambda: queue_counts(queue), lambda c: c is not None and c[0] == 0,
             what="`queues list` to show 0 messages after the purge")
    ok("delete", "queue", "--name", queue)
    assert queue_counts(queue) is None
    ok("delete", "exchange", "--name", exchange)
    assert row_where(ok("list", "exchanges"), c0=exchange) == []


def test_queue_shared_with_an_application(broker, names):
    """Operators declare queues with rabbitmqadmin, applications declare the same queues
    with their client library, in either order. rabbitmqadmin sends x-queue-type: classic;
    clients usually send no x-queue-type. RabbitMQ treats the two as the same for a classic
    queue, and refuses a different type."""
    ch = broker.connect().channel()

    by_admin = names.queue("by-admin")
    ok("declare", "queue", "--name", by_admin, "--durable", "true")
    ch.queue_declare(by_admin, durable=True)  # no x-queue-type

    by_app = names.queue("by-app")
    ch.queue_declare(by_app, durable=True)
    ok("declare", "queue", "--name", by_app, "--durable", "true")  # x-queue-type: classic

    r = admin("declare", "queue", "--name", by_app, "--durable", "true", "--type", "quorum")
    assert r.returncode != 0
    assert "inequivalent arg 'x-queue-type'" in r.stdout + r.stderr, r


@pytest.mark.skipif(not TENANT_URL, reason="TENANT_URL is not set (interop/run sets up the interop-tenant vhost)")
def test_another_vhost(broker):
    """--vhost: rabbitmqadmin encodes every byte of a path segment but letters and digits,
    so the vhost interop-tenant is asked for as /api/queues/interop%2Dtenant."""
    vhost = urllib.parse.unquote(urllib.parse.urlsplit(TENANT_URL).path[1:])
    names = Names("admin", url=TENANT_URL)
    try:
        # The tenant user may only touch names starting with 'it-'.
        queue = names.queue("jobs", prefix=f"it-mgmt-{names.run_id}")
        ch = broker.connect(TENANT_URL).channel()
        ch.queue_declare(queue, durable=True)
        publish_confirmed(ch, "", queue, ["a", "b"])
        wait_for(lambda: queue_counts(queue, vhost=vhost), lambda c: c == (2, 0, 0),
                 what=f"`--vhost {vhost} queues list` to show the queue with 2 messages")
        assert row_where(ok("list", "queues", vhost=vhost), c0=queue)[0][1] == vhost
        # Not in the default vhost's listing.
        assert queue_counts(queue) is None
        # Listing is for any administrator; getting messages needs permissions in the vhost,
        # which guest has not there: refused (HTTP 401), and the messages stay.
        r = admin("get", "messages", "--queue", queue, "--ack-mode", "ack_requeue_false", vhost=vhost)
        assert r.returncode != 0, r
        assert queue_counts(queue, vhost=vhost) == (2, 0, 0)
    finally:
        names.cleanup()


def test_missing_objects(names):
    missing = names.queue("never-declared")
    r = admin("delete", "queue", "--name", missing)
    assert r.returncode != 0
    assert "404" in r.stdout + r.stderr, r
    # --idempotently: a 404 on delete is success.
    ok("delete", "queue", "--name", missing, "--idempotently")
    r = admin("get", "messages", "--queue", missing)
    assert r.returncode != 0 and "404" in r.stdout + r.stderr, r


def local_port(conn):
    # pika 1.4.4: BlockingConnection -> SelectConnection -> transport -> socket.
    return conn._impl._transport._sock.getsockname()[1]


def test_list_connections_and_channels(broker, names):
    queue = names.queue("work")
    tag = f"interop-mgmt-consumer-{names.run_id}"
    conn = broker.connect(name=f"interop-mgmt-{names.run_id}")
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    ch.basic_qos(prefetch_count=3)
    ch.basic_consume(queue, on_message_callback=lambda *a: None, consumer_tag=tag)
    conn.process_data_events(time_limit=0)

    # A connection is named "client address:port -> server address:port".
    port = local_port(conn)

    def ours(output):
        return [r for r in rows(output) if r and re.match(rf"\S+:{port} -> ", r[0])]

    connection = wait_for(lambda: ours(ok("list", "connections")), lambda r: len(r) == 1,
                          what=f"`list connections` to show the connection from port {port}")[0]
    name = connection[0]
    # name, node, state, protocol, user, connected_at, ... channel count last
    assert connection[3:5] == ["AMQP 0-9-1", USERNAME], connection
    assert re.fullmatch(r"\d{13}", connection[5]), connection  # connected_at, ms since the epoch

    def our_channel(output):
        return [r for r in rows(output) if len(r) > 1 and r[1] == f"{name} (1)"]

    # id, name, vhost, state, consumer_count, confirm, prefetch_count, unacked, unconfirmed
    channel = wait_for(lambda: our_channel(ok("list", "channels")),
                       lambda r: len(r) == 1 and r[0][4] == "1",
                       what=f"`list channels` to show channel 1 of {name} with 1 consumer")[0]
    assert channel[0] == "1" and channel[2] == "/" and channel[6] == "3", channel
    assert wait_for(lambda: ours(ok("list", "connections")), lambda r: r and r[0][-1] == "1",
                    what="the connection's channel count to be 1")

    # The queue's own listing counts the consumer.
    wait_for(lambda: queue_counts(queue), lambda c: c is not None and c[2] == 1,
             what="`queues list` to count 1 consumer")

    conn.close()
    wait_for(lambda: ours(ok("list", "connections")), lambda r: r == [],
             what="the closed connection to leave `list connections`")


def test_list_consumers(broker, names):
    queue = names.queue("work")
    tag = f"interop-mgmt-consumer-{names.run_id}"
    conn = broker.connect()
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    ch.basic_qos(prefetch_count=3)
    ch.basic_consume(queue, on_message_callback=lambda *a: None, consumer_tag=tag)
    conn.process_data_events(time_limit=0)

    def consumers():
        return ok_unless_reference_gap(("list", "consumers"), "/api/consumers", "consumer_timeout")

    # vhost, queue, consumer_tag, manual_ack, prefetch_count, active, exclusive, ...
    consumer = wait_for(lambda: row_where(consumers(), c1=queue, c2=tag), lambda r: len(r) == 1,
                        what=f"`list consumers` to show {tag} on {queue}")[0]
    assert consumer[:7] == ["/", queue, tag, "true", "3", "true", "false"], consumer

    ch.basic_cancel(tag)
    wait_for(lambda: row_where(consumers(), c2=tag), lambda r: r == [],
             what=f"the cancelled consumer {tag} to leave `list consumers`")
