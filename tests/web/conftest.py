"""Browser tests read their own outcome in teardown (to print what the page showed when
one fails): each test item keeps its call-phase report as `rep_call`."""

from __future__ import annotations

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
