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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the end of the gateway's log to a failed test's report."""
    outcome = yield
    rep = outcome.get_result()
    gw = getattr(item, "funcargs", {}).get("gateway")
    if rep.failed and isinstance(gw, Gateway):
        rep.sections.append(("gateway log (last lines)", gw.log_tail(60)))
