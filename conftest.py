"""Root conftest: runs before Django is configured, so it can set the test environment."""

import os

# Tests never run with a real secret; load_options requires one when DEBUG is off.
os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")
