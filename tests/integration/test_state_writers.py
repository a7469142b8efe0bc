"""``verify`` and ``adopt`` write to the state database without the service's lock: what they
do when another connection keeps it busy, and that their writes land in short transactions."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from rollkeeper.cli import main
from rollkeeper.commands import verify
from rollkeeper.store import StateStore
from tests.archive_helpers import LONG_AGO, archive_file


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(config file, archive root, state file) with three archived files."""
    root = tmp_path / "archive"
    state = tmp_path / "state" / "state.sqlite3"
    root.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[archive]\npath = "{root}"\n\n[state]\npath = "{state}"\n')
    store = StateStore.open(state)
    try:
        for number in (1, 2, 3):
            archive_file(store, root, f"2024/2024-07/IMG_000{number}.JPG", os.urandom(5_000))
    finally:
        store.close()
    return config, root, state


@contextmanager
def writer_holding_the_database(state: Path) -> Iterator[None]:
    """Another connection in the middle of a write transaction, as a busy service would be."""
    connection = sqlite3.connect(state, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
        connection.execute("ROLLBACK")
    finally:
        connection.close()


def stamps(state: Path) -> dict[str, str | None]:
    """relative path -> verified_at, read through a read-only store."""
    store = StateStore.open(state, read_only=True)
    try:
        return {entry.relative_path: entry.verified_at for entry in store.archive_entries()}
    finally:
        store.close()


def test_verify_still_reports_in_full_when_the_database_stays_busy(
    paths: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A database kept busy by another writer costs verify only its "verified at" notes: the
    report and the exit status are those of the check, and stderr says what was left out."""
    config, _, state = paths
    before = stamps(state)
    with writer_holding_the_database(state):
        code = main(["--config", str(config), "verify", "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 0
    assert report["ok"] is True and report["matched"] == 3
    assert "3 matching files could not be noted as verified" in captured.err
    assert "database is locked" in captured.err
    assert stamps(state) == before


def test_verify_notes_every_match_across_several_short_transactions(
    paths: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With fewer stamps per transaction than matches, every match is still noted, all with
    the one moment of this verify."""
    config, _, state = paths
    monkeypatch.setattr(verify, "STAMPS_PER_TRANSACTION", 2)
    code = main(["--config", str(config), "verify", "--json"])
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    noted = set(stamps(state).values())
    assert len(noted) == 1
    (stamp,) = noted
    assert stamp is not None and datetime.fromisoformat(stamp) > LONG_AGO


def test_adopt_stops_clearly_when_the_database_stays_busy_and_adopting_again_finishes(
    paths: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database kept busy past SQLite's wait stops adopt with exit status 2 and a one-line
    reason, recording nothing half; adopting again once it is free adopts everything."""
    config, _, state = paths
    folder = tmp_path / "old copies"
    folder.mkdir()
    for number in (1, 2):
        (folder / f"photo-{number}.jpg").write_bytes(os.urandom(3_000))

    with writer_holding_the_database(state):
        code = main(["--config", str(config), "adopt", str(folder)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("rollkeeper: cannot write to the state database")
    assert "database is locked" in captured.err
    assert "adopt again to add the rest" in captured.err
    assert len(stamps(state)) == 3

    code = main(["--config", str(config), "adopt", str(folder), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["adopted"] == 2
    assert len(stamps(state)) == 5
