"""Fixtures shared across test files."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.cluster_fakes.redis_server import REDIS_SERVER, RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the session; ``.url``, ``.stop()``, ``.start()``, ``.flushall()``.

    A test that stops it must start it again before it ends (the next test expects it running).
    """
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()
