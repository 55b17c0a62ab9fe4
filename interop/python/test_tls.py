"""AMQPS with pika (issue #13): a password login over TLS, SASL EXTERNAL with a client
certificate, and the refusals a client sees (no certificate, a certificate from an unknown CA).

The runner starts the broker with a TLS listener (verify_peer, fail_if_no_peer_cert = false)
and gives AMQPS_URL (guest over TLS) and INTEROP_TLS_DIR (the PKI from interop/lib/make-pki).
"""

import os
import ssl
import uuid
from urllib.parse import urlsplit

import pika
import pytest

AMQPS_URL = os.environ.get("AMQPS_URL", "")
TLS_DIR = os.environ.get("INTEROP_TLS_DIR", "")

pytestmark = pytest.mark.skipif(
    not (AMQPS_URL and TLS_DIR),
    reason="no TLS listener given: set AMQPS_URL and INTEROP_TLS_DIR (interop/run does)",
)


def params(cert=None, external=False):
    """Connection parameters for AMQPS_URL trusting the test CA, presenting `cert`
    ("client" or "stranger") if given."""
    p = pika.URLParameters(AMQPS_URL)
    context = ssl.create_default_context(cafile=os.path.join(TLS_DIR, "ca.pem"))
    if cert:
        context.load_cert_chain(
            os.path.join(TLS_DIR, f"{cert}.pem"), os.path.join(TLS_DIR, f"{cert}.key")
        )
    p.ssl_options = pika.SSLOptions(context, server_hostname=urlsplit(AMQPS_URL).hostname)
    if external:
        p.credentials = pika.credentials.ExternalCredentials()
    return p


def round_trip(conn):
    ch = conn.channel()
    queue = ch.queue_declare("", exclusive=True).method.queue
    body = os.urandom(300_000)  # many TLS records
    ch.basic_publish("", queue, body)
    ch.basic_publish("", queue, b"small")
    for expected in (body, b"small"):
        method, _props, got = ch.basic_get(queue, auto_ack=True)
        assert method is not None and got == expected


def test_a_password_login_over_tls():
    conn = pika.BlockingConnection(params())
    round_trip(conn)
    conn.close()


def test_external_logs_in_as_the_user_the_certificate_names():
    conn = pika.BlockingConnection(params(cert="client", external=True))
    round_trip(conn)
    conn.close()


def test_external_is_not_offered_without_a_client_certificate():
    # pika looks for EXTERNAL in connection.start's mechanisms and gives up without it.
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(params(external=True))


def test_a_certificate_from_an_unknown_ca_is_refused():
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(params(cert="stranger"))
    # The listener is unharmed.
    conn = pika.BlockingConnection(params(cert="client", external=True))
    ch = conn.channel()
    queue = f"tls-after-{uuid.uuid4().hex[:8]}"
    ch.queue_declare(queue, exclusive=True)
    conn.close()
