"""Django's SQLite backend, with the process's writers queued on a lock.

SQLite lets one connection write at a time. A connection that finds the database locked waits
in SQLite's busy handler, which sleeps and retries at growing intervals (1, 2, 5, 10 … 100 ms):
with API threads and the embedded worker writing at once, a writer often slept on past the
moment the lock came free, and the slowest runs took a second or more at 16 clients.

In embedded mode every writer lives in this one process, so they can queue on a
``threading.Lock`` instead, which hands over as soon as the holder commits. A write
transaction takes the lock at ``BEGIN IMMEDIATE`` and gives it back at commit, rollback or
close; a write statement outside a transaction holds it for that statement. Reads never take
it (WAL lets them run beside the writer). Another process's writer (``manage.py`` commands,
a second server) is still met by SQLite's busy handler, as before. If the lock cannot be had
within the connection's ``timeout``, the writer goes ahead without it and SQLite's own
timeout applies, so a leaked lock can slow writers down but never hang them.
"""

from __future__ import annotations

import threading

from django.db.backends.sqlite3 import base

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()

# Statements that write; everything else (SELECT, PRAGMA reads, EXPLAIN) runs without the lock.
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


def _write_lock(database: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(database, threading.Lock())


class DatabaseWrapper(base.DatabaseWrapper):
    holds_write_lock = False

    def take_write_lock(self) -> bool:
        """Queue for the write lock; False if this connection holds it already or gave up waiting."""
        if self.holds_write_lock:
            return False
        lock = _write_lock(str(self.settings_dict["NAME"]))
        self.holds_write_lock = lock.acquire(timeout=self.settings_dict["OPTIONS"].get("timeout", 5))
        return self.holds_write_lock

    def release_write_lock(self) -> None:
        if self.holds_write_lock:
            self.holds_write_lock = False
            _write_lock(str(self.settings_dict["NAME"])).release()

    def _start_transaction_under_autocommit(self) -> None:
        self.take_write_lock()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self.release_write_lock()
            raise

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self.release_write_lock()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self.release_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.release_write_lock()

    def create_cursor(self, name: str | None = None) -> base.SQLiteCursorWrapper:
        cursor = self.connection.cursor(factory=QueuedWriteCursor)
        cursor.wrapper = self
        return cursor


class QueuedWriteCursor(base.SQLiteCursorWrapper):
    """A write outside a transaction holds the process's write lock for its one statement."""

    wrapper: DatabaseWrapper

    def execute(self, query, params=None):
        taken = _is_write(query) and self.wrapper.take_write_lock()
        try:
            return super().execute(query, params)
        finally:
            if taken:
                self.wrapper.release_write_lock()

    def executemany(self, query, param_list):
        taken = _is_write(query) and self.wrapper.take_write_lock()
        try:
            return super().executemany(query, param_list)
        finally:
            if taken:
                self.wrapper.release_write_lock()


def _is_write(query: str) -> bool:
    return query.lstrip()[:7].upper().startswith(_WRITE_VERBS)
