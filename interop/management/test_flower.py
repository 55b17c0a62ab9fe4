"""Celery Flower's broker page, against the management API.

Flower (flower/utils/broker.py, class RabbitMQ) makes one request for its broker page and
its /api/queues/length endpoint: GET urljoin(http_api, 'queues/' + vhost) with tornado's
AsyncHTTPClient, HTTP Basic auth, connect_timeout 1 s, request_timeout 2 s, no query
parameters. http_api is Flower's --broker_api option (documented as
http://guest:guest@localhost:15672/api/), and the vhost comes from the broker URI kombu gives
it (Connection.as_uri: 'amqp://guest:guest@host:5672//' for the vhost '/'). Flower keeps
'/' as is, so 'queues/' + '/' is joined into /api/queues/ (every vhost); any other vhost is
percent-encoded into one segment. A 200 body is read as a JSON array and filtered by name
(x['name'] for every element); the page shows name, messages, messages_ready,
messages_unacknowledged and consumers.

FlowerBroker below does the same steps with the same client; the tests assert what the
broker page would show for queues whose contents they set up with pika.
"""

import asyncio
import json
import urllib.parse
from urllib.parse import quote, unquote, urljoin, urlparse

import pytest
import requests
from tornado import httpclient

from support import (
    AMQP_URL,
    MANAGEMENT_URL,
    PASSWORD,
    TENANT_URL,
    USERNAME,
    Names,
    publish_confirmed,
    wait_for,
)

SHOWN = ("name", "messages", "messages_ready", "messages_unacknowledged", "consumers")


def kombu_broker_uri(amqp_url):
    """What Flower gets from kombu's Connection.as_uri(include_password=True): the vhost,
    decoded, after one '/' (so the default vhost gives a path of '//')."""
    p = urllib.parse.urlsplit(amqp_url)
    vhost = unquote(p.path[1:]) if len(p.path) > 1 else "/"
    return f"amqp://{p.username}:{p.password}@{p.hostname}:{p.port or 5672}/{vhost}"


class FlowerBroker:
    """Flower's RabbitMQ broker class, step by step (URL, credentials, HTTP client)."""

    def __init__(self, broker_url, http_api):
        purl = urlparse(broker_url)
        vhost = purl.path[1:]
        # Flower: quote(vhost, '') or '/' if vhost != '/' else vhost
        self.vhost = (quote(vhost, "") or "/") if vhost != "/" else vhost
        self.username = unquote(purl.username or "") or "guest"
        self.password = unquote(purl.password or "") or "guest"
        self.http_api = http_api

    @property
    def url(self):
        return urljoin(self.http_api, "queues/" + self.vhost)

    def fetch(self):
        """The request Flower makes; returns tornado's response (any status)."""
        api_url = urlparse(self.http_api)
        username = unquote(api_url.username or "") or self.username
        password = unquote(api_url.password or "") or self.password

        async def go():
            client = httpclient.AsyncHTTPClient()
            try:
                return await client.fetch(
                    self.url,
                    auth_username=username,
                    auth_password=password,
                    connect_timeout=1.0,
                    request_timeout=2.0,
                    validate_cert=False,
                    raise_error=False,
                )
            finally:
                client.close()

        return asyncio.run(go())

    def queues(self, names):
        """What the broker page lists: the 200 body as a JSON array, filtered by name."""
        response = self.fetch()
        assert response.code == 200, f"GET {self.url}: {response.code} {response.body[:500]!r}"
        info = json.loads(response.body.decode())
        assert isinstance(info, list), f"GET {self.url}: not a JSON array: {info!r}"
        return [x for x in info if x["name"] in names]


def http_api_option():
    """Flower's --broker_api, as its docs write it: credentials in the URL, trailing slash."""
    p = urllib.parse.urlsplit(MANAGEMENT_URL)
    return f"{p.scheme}://{quote(USERNAME, '')}:{quote(PASSWORD, '')}@{p.netloc}/api/"


def shown(entries):
    return {e["name"]: {k: e.get(k, "N/A") for k in SHOWN} for e in entries}


@pytest.fixture
def busy_queue(broker, names):
    """A durable queue with 4 messages: 3 ready, 1 held unacknowledged by a manual-ack
    consumer with prefetch 1 (as a Celery worker with prefetch multiplier 1 holds one task)."""
    queue = names.queue("celery-tasks")
    publisher = broker.connect().channel()
    publisher.queue_declare(queue, durable=True)
    publish_confirmed(publisher, "", queue, [f"task {i}" for i in range(4)])

    conn = broker.connect()
    worker = conn.channel()
    worker.basic_qos(prefetch_count=1)
    held = []
    worker.basic_consume(queue, on_message_callback=lambda ch, m, p, b: held.append(m.delivery_tag))
    wait_for(lambda: conn.process_data_events(time_limit=0.1) or len(held), lambda n: n == 1,
             timeout=10, what="the consumer to receive one message", poll=0)
    return queue


EXPECTED = {"messages": 4, "messages_ready": 3, "messages_unacknowledged": 1, "consumers": 1}


def test_broker_page_default_vhost(busy_queue):
    flower = FlowerBroker(kombu_broker_uri(AMQP_URL), http_api_option())
    # The default vhost: Flower asks for every vhost's queues, with a trailing slash.
    assert urlparse(flower.url).path == "/api/queues/"
    assert urlparse(flower.url).query == ""

    want = {"name": busy_queue, **EXPECTED}
    page = wait_for(
        lambda: shown(flower.queues([busy_queue, "celery"])),
        lambda got: got.get(busy_queue) == want,
        what=f"Flower's broker page to show {want}",
    )
    # Only the names asked for are kept, and the unknown 'celery' queue is simply absent.
    assert list(page) == [busy_queue]


def test_every_element_has_a_name(busy_queue):
    """Flower indexes x['name'] on every element of the array, for every vhost's queues."""
    response = FlowerBroker(kombu_broker_uri(AMQP_URL), http_api_option()).fetch()
    assert response.code == 200
    assert response.headers.get("Content-Type", "").startswith("application/json")
    info = json.loads(response.body.decode())
    assert isinstance(info, list) and info
    assert all(isinstance(x, dict) and isinstance(x.get("name"), str) for x in info)
    assert busy_queue in {x["name"] for x in info}


def test_requests_form(busy_queue):
    """The same request made the way most scripts do: requests.get with auth and a timeout."""
    url = urljoin(MANAGEMENT_URL + "/api/", "queues/")

    def fetch():
        r = requests.get(url, auth=(USERNAME, PASSWORD), timeout=2)
        assert r.status_code == 200, f"GET {url}: {r.status_code} {r.text[:500]}"
        return {x["name"]: x for x in r.json() if x["name"] == busy_queue}

    got = wait_for(
        fetch,
        lambda q: busy_queue in q and all(q[busy_queue].get(k) == v for k, v in EXPECTED.items()),
        what=f"{url} to show {EXPECTED} for the queue",
    )
    entry = got[busy_queue]
    # Integers, as Flower's table and /api/queues/length pass them on.
    assert all(type(entry[k]) is int for k in EXPECTED)
    assert entry["vhost"] == "/"


def test_wrong_password_is_refused():
    """Flower logs a failed call and shows an empty list; the API must say 401."""
    url = urljoin(MANAGEMENT_URL + "/api/", "queues/")
    r = requests.get(url, auth=(USERNAME, PASSWORD + "-wrong"), timeout=2)
    assert r.status_code == 401


@pytest.mark.skipif(not TENANT_URL, reason="TENANT_URL is not set (interop/run sets up the interop-tenant vhost)")
def test_broker_page_named_vhost(broker):
    """A broker URL with a named vhost: Flower asks for /api/queues/<vhost>."""
    names = Names("flower", url=TENANT_URL)
    try:
        # The tenant user may only touch names starting with 'it-'.
        queue = names.queue("tasks", prefix=f"it-mgmt-{names.run_id}")
        ch = broker.connect(TENANT_URL).channel()
        ch.queue_declare(queue, durable=True)
        publish_confirmed(ch, "", queue, ["a", "b"])

        vhost = unquote(urllib.parse.urlsplit(TENANT_URL).path[1:])
        flower = FlowerBroker(kombu_broker_uri(TENANT_URL), http_api_option())
        assert urlparse(flower.url).path == "/api/queues/" + quote(vhost, "")

        want = {"name": queue, "messages": 2, "messages_ready": 2, "messages_unacknowledged": 0, "consumers": 0}
        wait_for(
            lambda: shown(flower.queues([queue])),
            lambda got: got.get(queue) == want,
            what=f"Flower's broker page for vhost {vhost} to show {want}",
        )
        body = json.loads(flower.fetch().body.decode())
        assert {x["vhost"] for x in body} == {vhost}
    finally:
        names.cleanup()
