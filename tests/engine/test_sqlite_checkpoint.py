"""SQLite's WAL is checkpointed by a background thread, not inside a commit (engine.db._Checkpointer)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

import engine.db as engine_db
from engine.db import make_database


@pytest.fixture
def fast_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_db, "SQLITE_CHECKPOINT_SECONDS", 0.01)


def _rows_in_main_file(path: Path, copy: Path) -> int:
    """Count the rows the database file itself holds (its WAL left out): what checkpoints copied there.

    The copy is taken while the thread may be writing the file: a torn copy ("malformed") counts as -1, not yet.
    """
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        if conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone()[0] == 0:
            return 0  # not even the table's creation was copied
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    except sqlite3.DatabaseError:
        return -1
    finally:
        conn.close()


def _write(db: engine_db.Database, rows: int) -> None:
    with db.write_engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
    for n in range(rows):
        with db.write_engine.begin() as conn:
            conn.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})


def test_commits_leave_the_copy_to_the_thread(tmp_path: Path, fast_checkpoints: None) -> None:
    db = make_database(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with db.engine.connect() as conn:  # writers only checkpoint themselves far beyond SQLite's 1,000 pages
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == engine_db.SQLITE_AUTOCHECKPOINT_PAGES
        _write(db, 50)
        give_up = time.monotonic() + 10
        while _rows_in_main_file(tmp_path / "a.db", tmp_path / "copy.db") < 50:  # the thread's checkpoint
            assert time.monotonic() < give_up, "no checkpoint copied the commits into the database file"
            time.sleep(0.01)
    finally:
        db.dispose()


def test_without_the_thread_the_commits_stay_in_the_wal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: with the thread off and fewer pages than SQLite's own bound, nothing reaches the file."""
    monkeypatch.setattr(engine_db, "SQLITE_CHECKPOINT_SECONDS", 0)
    db = make_database(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        assert db._checkpointer is None
        _write(db, 50)
        time.sleep(0.1)  # ten of the other test's intervals: long enough for a thread that should not exist
        assert _rows_in_main_file(tmp_path / "b.db", tmp_path / "copy.db") == 0
    finally:
        db.dispose()


def test_dispose_stops_the_thread_and_it_never_creates_a_file(tmp_path: Path, fast_checkpoints: None) -> None:
    path = tmp_path / "c.db"
    db = make_database(f"sqlite:///{path}")
    assert db._checkpointer is not None
    thread = db._checkpointer.thread
    time.sleep(0.05)  # the file does not exist yet (nothing connected): the thread must not make it
    assert not path.exists()
    db.dispose()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_every_connection_gets_the_chosen_page_cache(tmp_path: Path) -> None:
    """Read and write connections both run with SQLITE_CACHE_KIB (the 100,000-case measurement's choice)."""
    db = make_database(f"sqlite:///{tmp_path / 'cache.db'}")
    try:
        with db.engine.connect() as conn:
            read = conn.execute(text("PRAGMA cache_size")).scalar()
        with db.write_engine.begin() as conn:
            write = conn.execute(text("PRAGMA cache_size")).scalar()
    finally:
        db.dispose()
    assert engine_db.SQLITE_CACHE_KIB > 2000  # larger than SQLite's own 2 MB default
    assert read == write == -engine_db.SQLITE_CACHE_KIB  # negative: KiB, not pages
