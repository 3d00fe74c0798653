"""Fixtures for the runtime tests: no database, no Django needed."""

from __future__ import annotations

import pytest

from tests.cosmos.runtime.helpers import Recorder
from tests.support.fixtures import model_server  # noqa: F401  (re-exported fixture)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
