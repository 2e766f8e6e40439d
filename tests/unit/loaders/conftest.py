"""Let ``pytest -k fetch`` select these unit tests together with tests/integration/test_fetch_*."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith("tests/unit/loaders/"):
            item.extra_keyword_matches.add("fetch")
