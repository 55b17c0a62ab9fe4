"""Fixtures for the pika interop tests.

Every test gets:
  - ``broker``: opens BlockingConnections to $AMQP_URL and closes them at teardown;
  - ``names``: unique queue/exchange names (uuid suffix) that are deleted at teardown,
    so the suite can run against a shared broker and leave nothing behind.
"""

import pytest

from support import Broker, Names


@pytest.fixture
def broker():
    b = Broker()
    yield b
    b.close_all()


@pytest.fixture
def names(request):
    n = Names(request.node.name.replace("[", "-").replace("]", ""))
    yield n
    n.cleanup()
