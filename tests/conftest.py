"""Shared fixtures: every test session builds into a temporary cache.

The shared references (paths, reference numbers, spec factories, independent implementations)
live in tests/helpers.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from helpers import *  # noqa: F401,F403 -- old `from conftest import ...` lines keep working


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Builds go to a temporary cache, never to the user's home (one per test session)."""
    patcher = pytest.MonkeyPatch()
    patcher.setenv("SYMGRAD_CACHE", str(tmp_path_factory.mktemp("symgrad-cache")))
    yield
    patcher.undo()
