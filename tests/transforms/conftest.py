"""Fixtures for the transform tests: a private compile cache."""

from __future__ import annotations

import pytest

from lowbit.compiler.cache import CompileCache


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> CompileCache:
    return CompileCache(tmp_path_factory.mktemp("lowbit-cache"))
