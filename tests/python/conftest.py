"""Fixtures: one gateway process per test module, and the serializer parameter."""

import pytest

from support import SERIALIZERS, Gateway


@pytest.fixture(scope="module")
def gateway():
    gw = Gateway().start()
    try:
        yield gw
    finally:
        gw.close()


@pytest.fixture(params=SERIALIZERS)
def serializer(request):
    """Every test runs once with wamp.2.json and once with wamp.2.msgpack."""
    return request.param


@pytest.fixture
def url(gateway):
    return gateway.url
