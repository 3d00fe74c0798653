"""Settings for the test suite: the real settings, with a throwaway secret key.

The key is not a secret: it only signs test sessions. Everything else comes from the
environment exactly as in production, so CI's distributed pass is the real configuration.
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")
# The local servers the tests talk to (model servers, remote A2A agents, web pages for http_get)
# listen on 127.0.0.1, which the outbound policy refuses unless allowlisted: allowlist it here,
# explicitly (worker subprocesses inherit it). The outbound policy's own tests turn it off.
os.environ.setdefault("ASTEROS_OUTBOUND_ALLOWLIST", "127.0.0.1")
if os.environ.get("REDIS_URL"):
    # A metrics directory of this test session's own (its worker subprocesses inherit it), so
    # counts from other sessions or earlier runs never mix into the assertions.
    import tempfile

    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="asteros-test-metrics-"))

from asteros_site.settings import *  # noqa: F403

# SQLite's shared-cache in-memory test database locks whole tables between threads (no busy
# timeout), which the embedded worker thread would trip over; a file in WAL mode does not.
if DATABASES["default"]["ENGINE"] == "cosmos.sqlite":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": f"/tmp/asteros-test-{os.getpid()}.sqlite3"}  # noqa: F405
