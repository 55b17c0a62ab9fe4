"""Fixtures for the management interop tests.

Every test gets:
  - ``broker``: opens pika BlockingConnections to $AMQP_URL and closes them at teardown;
  - ``names``: unique queue/exchange names (random suffix) that are deleted at teardown.
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
