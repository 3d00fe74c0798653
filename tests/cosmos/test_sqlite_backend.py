"""The embedded SQLite backend queues the process's writers on a lock (cosmos/sqlite/base.py).

Each test opens its own SQLite file through a connection handler of its own, so it runs the
same in the embedded and the distributed pass. A connection handler gives each thread its own
connection, as Django does for requests and the engine's database threads.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler

from cosmos.sqlite.base import DatabaseWrapper, _write_lock


@pytest.fixture
def database(tmp_path, django_db_blocker) -> Iterator[Callable[[], DatabaseWrapper]]:
    """A function that returns the calling thread's connection to a fresh database file.

    Not the test database: pytest-django's blocker is lifted for this file alone.
    """
    path = tmp_path / "queued.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE item (name TEXT)")
    options = {"timeout": 2, "transaction_mode": "IMMEDIATE"}
    handler = ConnectionHandler({"default": {"ENGINE": "cosmos.sqlite", "NAME": str(path), "OPTIONS": options}})
    with django_db_blocker.unblock():
        yield lambda: handler["default"]
        handler.close_all()


@contextmanager
def write_transaction(connection: DatabaseWrapper) -> Iterator[None]:
    # What transaction.atomic() does on its outermost block, for a connection of our own.
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    try:
        yield
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.set_autocommit(True)


def insert(connection: DatabaseWrapper, name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO item (name) VALUES (%s)", [name])


def names(connection: DatabaseWrapper) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM item ORDER BY rowid")
        return [row[0] for row in cursor.fetchall()]


def in_thread(work: Callable[[], object]) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_writer_queues_behind_a_write_transaction_and_goes_on_at_its_commit(database):
    holder = database()
    with write_transaction(holder):
        insert(holder, "first")
        assert holder.holds_write_lock
        waiter, outcome = in_thread(lambda: insert(database(), "second"))
        waiter.join(0.3)
        assert waiter.is_alive(), "the second writer must wait for the lock, not write beside the transaction"
    waiter.join(5)
    assert not waiter.is_alive() and "error" not in outcome
    assert names(holder) == ["first", "second"]
    assert not holder.holds_write_lock and not _write_lock(holder.settings_dict["NAME"]).locked()


def test_reads_do_not_wait_for_the_write_lock(database):
    holder = database()
    insert(holder, "committed")
    with write_transaction(holder):
        insert(holder, "uncommitted")
        reader, outcome = in_thread(lambda: names(database()))
        reader.join(5)
        assert not reader.is_alive()
        assert outcome == {"result": ["committed"]}


@pytest.mark.parametrize("end", ["rollback", "close"])
def test_a_transaction_that_ends_without_commit_gives_the_lock_back(database, end):
    holder = database()
    holder.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    insert(holder, "undone")
    assert _write_lock(holder.settings_dict["NAME"]).locked()
    if end == "rollback":
        holder.rollback()
        holder.set_autocommit(True)
    else:
        holder.close()
    assert not holder.holds_write_lock and not _write_lock(holder.settings_dict["NAME"]).locked()
    insert(database(), "after")
    assert names(database()) == ["after"]


def test_a_writer_that_cannot_get_the_lock_in_time_meets_sqlites_own_timeout(database):
    holder = database()
    lock = _write_lock(holder.settings_dict["NAME"])
    with write_transaction(holder):
        insert(holder, "held")

        def impatient_write() -> None:
            connection = database()
            connection.settings_dict["OPTIONS"]["timeout"] = 0.2
            connection.close()  # reconnect with the short timeout
            insert(connection, "refused")

        writer, outcome = in_thread(impatient_write)
        writer.join(10)
        assert not writer.is_alive()
        assert isinstance(outcome.get("error"), OperationalError)
        assert "locked" in str(outcome["error"])
        assert lock.locked() and holder.holds_write_lock, "the impatient writer must not release a lock it never had"
    assert names(holder) == ["held"]
