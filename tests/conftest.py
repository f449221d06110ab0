"""Fixtures shared by several test modules."""
from __future__ import annotations

import pytest

from pg_server import postgres


@pytest.fixture
def pg_url():
    """A PostgreSQL storage URL on a fresh server (trust authentication)."""
    with postgres() as (host, port):
        yield f"postgresql+psycopg2://dse@{host}:{port}/studies"
