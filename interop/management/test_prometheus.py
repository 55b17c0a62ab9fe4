"""A real Prometheus scraping the broker, queried the way RabbitMQ's Grafana dashboards do.

The module starts its own Prometheus server (Debian's `prometheus` binary, or
$PROMETHEUS_BIN) on a free port with a temporary configuration and storage folder, and
stops it at the end. It scrapes $PROMETHEUS_URL every second as two jobs:
  - `rabbitmq`: /metrics, the aggregated metrics (one series per metric, no object labels);
  - `rabbitmq-per-object`: /metrics/per-object, the same metric names with queue, vhost,
    channel... labels (RabbitMQ names them the same in both endpoints).
The tests then use Prometheus's HTTP API (/api/v1/query), polling until a query returns
what pika did, as a dashboard panel would show it.
"""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse

import pytest
import requests

from support import PROMETHEUS_URL, STATS_TIMEOUT, free_port, publish_confirmed, wait_for

AGGREGATED, PER_OBJECT = "rabbitmq", "rabbitmq-per-object"
# The RabbitMQ-Overview dashboard joins every panel's metric to rabbitmq_identity_info
# to get the cluster and node names.
IDENTITY_JOIN = "* on(instance, job) group_left(rabbitmq_cluster, rabbitmq_node) rabbitmq_identity_info"


class Prometheus:
    def __init__(self, url, log_path):
        self.url = url
        self.log_path = log_path

    def api(self, path, **params):
        r = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=5)
        body = r.json()
        assert r.status_code == 200 and body.get("status") == "success", f"{path} {params}: {r.status_code} {body}"
        return body["data"]

    def query(self, expr):
        """An instant query: [(labels, value)] for a vector result."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def scalar(self, expr):
        """The single value of a one-series query (e.g. a sum), or None while it has none."""
        result = self.query(expr)
        assert len(result) <= 1, f"{expr}: more than one series: {result}"
        return result[0][1] if result else None

    def log_tail(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-40:])
        except OSError:
            return ""


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    binary = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")
    if not binary:
        pytest.fail("prometheus is not installed (apt-get install prometheus)")
    workdir = tmp_path_factory.mktemp("prometheus")
    target = urllib.parse.urlsplit(PROMETHEUS_URL)
    scrape = {"scheme": target.scheme, "static_configs": [{"targets": [target.netloc]}]}
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": AGGREGATED, "metrics_path": "/metrics", **scrape},
            {"job_name": PER_OBJECT, "metrics_path": "/metrics/per-object", **scrape},
        ],
    }
    # JSON is YAML, so no YAML library is needed.
    (workdir / "prometheus.yml").write_text(json.dumps(config, indent=2))
    port = free_port()
    log_path = workdir / "prometheus.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    prom = Prometheus(f"http://127.0.0.1:{port}", log_path)

    def ready():
        assert proc.poll() is None, f"prometheus exited with {proc.returncode}:\n{prom.log_tail()}"
        try:
            return requests.get(f"{prom.url}/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(ready, bool, timeout=60, what="prometheus to be ready", poll=0.1)
        yield prom
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


PATHS = {AGGREGATED: "/metrics", PER_OBJECT: "/metrics/per-object"}


def assert_exported(prom, job, *metrics):
    """Waits for a scrape of the job that starts after this call, then fails at once for a
    metric that scrape did not bring (rather than polling a query until its deadline)."""
    t0 = time.time()
    wait_for(lambda: prom.scalar(f'timestamp(up{{job="{job}"}})'), lambda ts: ts is not None and ts > t0,
             timeout=15, what=f"a new scrape of {PROMETHEUS_URL}{PATHS[job]}", poll=0.2)
    missing = [m for m in metrics if not prom.query(f'{m}{{job="{job}"}}')]
    assert not missing, f"not exported by {PROMETHEUS_URL}{PATHS[job]}: {', '.join(missing)}"


def targets_health(prom):
    return {t["labels"]["job"]: (t["health"], t.get("lastError", "")) for t in prom.api("targets")["activeTargets"]}


def test_both_endpoints_are_scraped(prometheus):
    health = wait_for(
        lambda: targets_health(prometheus),
        lambda h: all(h.get(job, ("", ""))[0] == "up" for job in (AGGREGATED, PER_OBJECT)),
        what=f"both scrape jobs ({PROMETHEUS_URL}/metrics and /metrics/per-object) to be up",
        poll=0.2,
    )
    assert set(health) == {AGGREGATED, PER_OBJECT}
    for job in (AGGREGATED, PER_OBJECT):
        assert prometheus.scalar(f'up{{job="{job}"}}') == 1


@pytest.mark.parametrize("job", [AGGREGATED, PER_OBJECT])
def test_identity_and_build_info(prometheus, job):
    identity = wait_for(
        lambda: prometheus.query(f'rabbitmq_identity_info{{job="{job}"}}'),
        lambda r: len(r) == 1,
        what=f"rabbitmq_identity_info from the {job} job",
        poll=0.2,
    )
    labels, value = identity[0]
    assert value == 1
    assert labels.get("rabbitmq_node") and labels.get("rabbitmq_cluster"), labels

    # The Overview dashboard's Nodes table: build info joined to identity.
    nodes = wait_for(
        lambda: prometheus.query(f'rabbitmq_build_info{{job="{job}"}} {IDENTITY_JOIN}'),
        lambda r: len(r) == 1,
        what=f"the dashboard's nodes table (rabbitmq_build_info joined to identity) from the {job} job",
        poll=0.2,
    )
    labels, _ = nodes[0]
    assert labels.get("rabbitmq_version"), labels
    assert labels["rabbitmq_node"] == identity[0][0]["rabbitmq_node"]
    assert labels["rabbitmq_cluster"] == identity[0][0]["rabbitmq_cluster"]


def test_ready_messages_of_a_queue(prometheus, broker, names):
    n = 7
    queue = names.queue("ready")
    ch = broker.connect().channel()
    ch.queue_declare(queue, durable=True)
    publish_confirmed(ch, "", queue, [f"m{i}" for i in range(n)])

    # The Overview dashboard's "Ready messages" panel, narrowed to this queue.
    expr = f'sum(rabbitmq_queue_messages_ready{{job="{PER_OBJECT}", queue="{queue}"}} {IDENTITY_JOIN})'
    wait_for(lambda: prometheus.scalar(expr), lambda v: v == n, what=f"{expr} to be {n}", poll=0.2)

    series = prometheus.query(f'rabbitmq_queue_messages_ready{{job="{PER_OBJECT}", queue="{queue}"}}')
    assert [labels.get("vhost") for labels, _ in series] == ["/"]
    total = f'rabbitmq_queue_messages{{job="{PER_OBJECT}", queue="{queue}"}}'
    wait_for(lambda: prometheus.scalar(total), lambda v: v == n, what=f"{total} to be {n}", poll=0.2)


def keep_doing_until(prometheus, conn, action, expr, accept, what, timeout=STATS_TIMEOUT):
    """Does action() every 20 ms (a steady rate for rate() to see) while polling the query
    every 0.5 s, until accept(value)."""
    deadline = time.monotonic() + timeout
    next_query = 0.0
    last = None
    done = 0
    while True:
        action()
        done += 1
        # Pacing; it also services the connection.
        conn.process_data_events(time_limit=0.02)
        now = time.monotonic()
        if now >= next_query:
            last = prometheus.scalar(expr)
            if last is not None and accept(last):
                return last
            next_query = now + 0.5
        if now >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; {done} done, last value {last!r}")


GLOBAL_RECEIVED = "rabbitmq_global_messages_received_total"


@pytest.mark.parametrize(
    "expr, counter",
    [
        # RabbitMQ's global counters (3.9+), summed over protocols.
        pytest.param(f'sum(rate({GLOBAL_RECEIVED}{{job="{AGGREGATED}"}}[10s]))', GLOBAL_RECEIVED,
                     id="global-received"),
        # The Overview dashboard's "Incoming messages / s" panel.
        pytest.param(
            f'sum(rate(rabbitmq_channel_messages_published_total{{job="{AGGREGATED}"}}[60s]) '
            f"* on(instance, job) group_left(rabbitmq_cluster) rabbitmq_identity_info)",
            None,
            id="dashboard-incoming",
        ),
    ],
)
def test_publish_rate(prometheus, broker, names, expr, counter):
    """While pika publishes, the rate is above 0. The global counter only ever grows, so
    that variant also waits until Prometheus has seen it grow by 50 of this test's messages
    (a rate left over from earlier tests is not enough). RabbitMQ's aggregated channel
    counters are sums over the open channels, which drop when a channel closes."""
    queue = names.queue("rate")
    conn = broker.connect()
    ch = conn.channel()
    ch.queue_declare(queue, arguments={"x-max-length": 100})
    total = f'sum({counter}{{job="{AGGREGATED}"}})'
    before = None
    if counter:
        assert_exported(prometheus, AGGREGATED, counter)
        before = prometheus.scalar(total)

    def seen(rate):
        return rate > 0 and (before is None or prometheus.scalar(total) >= before + 50)

    what = f"{expr} > 0" + (f" and {total} >= {before} + 50" if counter else "")
    rate = keep_doing_until(prometheus, conn, lambda: ch.basic_publish("", queue, b"tick"), expr, seen, what)
    assert rate > 0


def test_dashboard_nodes_table(prometheus):
    """The Overview dashboard's Nodes table (current RabbitMQ-Overview.json): uptime, joined
    to build info for the versions and to identity for the node and cluster names."""
    expr = (f'rabbitmq_erlang_uptime_seconds{{job="{AGGREGATED}"}} '
            "* on(instance, job) group_left(rabbitmq_version, erlang_version) rabbitmq_build_info "
            f"{IDENTITY_JOIN}")
    assert_exported(prometheus, AGGREGATED, "rabbitmq_erlang_uptime_seconds", "rabbitmq_build_info",
                    "rabbitmq_identity_info")
    rows = wait_for(lambda: prometheus.query(expr), lambda r: len(r) == 1, what=f"{expr} to give one node", poll=0.2)
    labels, uptime = rows[0]
    assert uptime > 0
    for label in ("rabbitmq_node", "rabbitmq_cluster", "rabbitmq_version", "erlang_version"):
        assert labels.get(label), (label, labels)


@pytest.mark.parametrize("counter", ["rabbitmq_queues_declared_total", "rabbitmq_queues_created_total",
                                     "rabbitmq_queues_deleted_total"])
def test_dashboard_queue_churn(prometheus, broker, names, counter):
    """The Overview dashboard's "Queues declared / created / deleted / s" panels, while a
    client declares and deletes a queue over and over."""
    queue = names.queue("churn")
    conn = broker.connect()
    ch = conn.channel()

    def churn():
        ch.queue_declare(queue)
        ch.queue_delete(queue)

    churn()
    assert_exported(prometheus, AGGREGATED, counter)
    expr = f'sum(rate({counter}{{job="{AGGREGATED}"}}[10s]) {IDENTITY_JOIN}) by(rabbitmq_node)'
    rate = keep_doing_until(prometheus, conn, churn, expr, lambda v: v > 0, f"{expr} > 0")
    assert rate > 0
