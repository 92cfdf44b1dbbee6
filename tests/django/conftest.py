"""Attach the end of the gateway's log to a failed test's report (as tests/python does)."""

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    gw = getattr(item, "funcargs", {}).get("gw")
    if rep.failed and gw is not None and hasattr(gw, "log_tail"):
        rep.sections.append(("gateway log (last lines)", gw.log_tail(60)))
