"""What a machine may lack (a binary, a browser): a skip on a user's machine, a failure in CI
(``CI`` set), where ``.ci/run`` installs it, so that a guarantee is never left untested there."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = bool(os.environ.get("CI"))


def skip_unless_in_ci(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)
