"""Schema migrations from committed databases of every older version (as beets tests them).

``tests/fixtures/state/state-vN.sqlite3`` is a small database made by the code of schema version
N (``tests/fixtures/state/make_fixture.py`` says how); each is opened by today's code, which
must bring it to the current version with every row it held.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from rollkeeper.store import StateStore, StateTooNewError
from rollkeeper.store.migrations import current_version, schema_version
from tests.fixtures.state.make_fixture import (
    FIXTURES,
    OTHER_PHONE,
    PHONE,
    fixture_path,
    make_fixture,
)

TABLES = ("devices", "phone_files", "archive_files", "runs", "run_failures")


def missing_fixtures(folder: Path, version: int) -> list[str]:
    """The fixtures a program at schema ``version`` needs that ``folder`` lacks: one for every
    version from 0 to ``version`` itself (the next migration will migrate from it)."""
    return [
        fixture_path(number, folder).name
        for number in range(version + 1)
        if not fixture_path(number, folder).is_file()
    ]


def table_rows(path: Path) -> dict[str, tuple[list[str], list[tuple[object, ...]]]]:
    """Columns and rows of every table of a database, read without writing to it."""
    connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        tables = [
            str(row[0])
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        found: dict[str, tuple[list[str], list[tuple[object, ...]]]] = {}
        for table in tables:
            columns = [str(row[1]) for row in connection.execute(f"PRAGMA table_info({table})")]
            rows = connection.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            found[table] = (columns, [tuple(row) for row in rows])
        return found
    finally:
        connection.close()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_schema_version_has_a_committed_fixture() -> None:
    """A fixture exists for every version from 0 to the current one, and says its version, so
    adding a migration without committing the database of the version it starts from fails."""
    assert missing_fixtures(FIXTURES, current_version()) == [], (
        "commit the state database of the current schema version: run "
        "`python -m tests.fixtures.state.make_fixture` before changing the schema further"
    )
    for version in range(1, current_version() + 1):
        connection = sqlite3.connect(f"file:{fixture_path(version)}?mode=ro&immutable=1", uri=True)
        try:
            assert schema_version(connection) == version
        finally:
            connection.close()


def test_the_fixture_guard_notices_a_new_migration(tmp_path: Path) -> None:
    """With one migration more than the committed fixtures cover, the guard names the fixture
    that is missing (the check above is not vacuous)."""
    for version in range(current_version() + 1):
        fixture_path(version, tmp_path).touch()
    assert missing_fixtures(tmp_path, current_version()) == []
    assert missing_fixtures(tmp_path, current_version() + 1) == [
        f"state-v{current_version() + 1}.sqlite3"
    ]


@pytest.mark.parametrize("version", range(current_version() + 1))
def test_each_fixture_migrates_to_the_current_version_with_its_rows(
    tmp_path: Path, version: int
) -> None:
    """Opening an old database brings it to the current version and keeps every row of every
    table it had, column for column; the committed file itself is never written."""
    committed = fixture_path(version)
    before_digest = file_digest(committed)
    before = table_rows(committed)
    if version >= 1:
        # Every table the version has holds a few rows (the first five since version 1).
        assert set(TABLES) <= set(before)
        assert all(rows for _, rows in before.values()), "each table holds a few rows"
    copy = tmp_path / "state.sqlite3"
    shutil.copy(committed, copy)

    store = StateStore.open(copy)
    try:
        assert store.integrity_check() == "ok"
        udids = {device.udid for device in store.devices()}
        entries = store.manifest()
    finally:
        store.close()

    connection = sqlite3.connect(copy)
    try:
        assert schema_version(connection) == current_version()
        for table, (columns, rows) in before.items():
            kept = connection.execute(
                f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid"
            ).fetchall()
            assert [tuple(row) for row in kept] == rows, table
    finally:
        connection.close()
    if version >= 1:
        assert udids == {PHONE, OTHER_PHONE}
        assert {entry.status for entry in entries} == {"archived", "failed", "excluded", "pending"}
    assert file_digest(committed) == before_digest


def test_the_script_makes_the_committed_fixture_of_the_current_version(tmp_path: Path) -> None:
    """make_fixture.py is how the current version's fixture was made: run again, it writes the
    same rows; and it refuses to overwrite a fixture that exists."""
    made = tmp_path / "state.sqlite3"
    make_fixture(made)
    assert table_rows(made) == table_rows(fixture_path(current_version()))
    with pytest.raises(FileExistsError):
        make_fixture(made)


def test_a_database_from_a_newer_rollkeeper_is_refused_and_left_alone(tmp_path: Path) -> None:
    """A database whose schema version is beyond this program's is refused with a message that
    names the file and both versions, and is not written to (not even switched to WAL)."""
    path = tmp_path / "state.sqlite3"
    newer = current_version() + 1
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE from_the_future (x)")
    connection.execute(f"PRAGMA user_version = {newer}")
    connection.commit()
    connection.close()
    before = file_digest(path)

    with pytest.raises(StateTooNewError) as caught:
        StateStore.open(path)

    assert str(caught.value) == (
        f"{path}: the state database has schema version {newer}, newer than this rollkeeper "
        f"understands ({current_version()}); upgrade rollkeeper"
    )
    assert (caught.value.found_version, caught.value.supported_version) == (
        newer,
        current_version(),
    )
    assert isinstance(caught.value, RuntimeError)
    assert file_digest(path) == before
    assert not Path(f"{path}-wal").exists()


def test_migration_5_leaves_no_summary_and_puts_unchecked_files_first(tmp_path: Path) -> None:
    """From version 4: no folder has a summary (so the first re-plug compares each folder file
    by file), no phone has had a full check, and the settled files, never checked, are what
    the rotating check takes first; the partial indexes answer its queries."""
    copy = tmp_path / "state.sqlite3"
    shutil.copy(fixture_path(4), copy)
    store = StateStore.open(copy)
    try:
        assert store.folder_summaries(PHONE) == {}
        assert store.full_check_at(PHONE) is None
        settled = store.least_recently_checked(PHONE, 10)
        assert sorted(item.name for item in settled) == [
            "IMG_0001.HEIC",
            "IMG_0001.MOV",
            "IMG_0003.PNG",
        ]
    finally:
        store.close()
    connection = sqlite3.connect(copy)
    try:
        plan = connection.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM phone_files WHERE udid = ? AND present = 1"
            " AND status IN ('archived', 'excluded') ORDER BY checked_at, id LIMIT 5",
            (PHONE,),
        ).fetchall()
        assert any("phone_files_check_order" in str(row[-1]) for row in plan), plan
    finally:
        connection.close()
