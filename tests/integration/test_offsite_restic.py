"""Offsite copies with the real restic (and rclone's local backend) against local repositories.

Every test runs the real engine as a child process, records into a real state database and, for
failures, alerts through the real notifier, whose ``on_failure`` hook (a real shell command)
writes what it was told to a file.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollkeeper.config import NotificationSettings
from rollkeeper.notify.notifier import Notifier
from rollkeeper.offsite.engines import OffsitePlan
from rollkeeper.offsite.job import OffsiteJob
from rollkeeper.store import StateStore
from rollkeeper.store.offsite_runs import OffsiteRunRecord

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("restic") is None, reason="restic is not installed"),
]

PASSWORD = "correct horse battery staple"


class Offsite:
    """An archive folder, a state database, a restic repository and a notifier with a hook."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.archive = base / "archive"
        self.archive.mkdir()
        self.repository = base / "repository"
        self.password_file = base / "password"
        self.password_file.write_text(PASSWORD + "\n")
        self.password_file.chmod(0o600)
        self.hook_output = base / "hook.json"
        self.store = StateStore.open(base / "state" / "state.sqlite3")
        self.template = base / "no-template"
        hook = (
            'python3 -c "import json, os; print(json.dumps({k: v for k, v in os.environ.items()'
            f" if k.startswith('ROLLKEEPER_')}}))\" > '{self.hook_output}'"
        )
        self.notifier = Notifier(
            NotificationSettings(desktop=False, on_failure=hook, min_interval_minutes=0),
            environ=dict(os.environ),
        )

    def plan(self, **changes: object) -> OffsitePlan:
        values: dict[str, object] = {
            "engine": "restic",
            "destination": str(self.repository),
            "password_file": str(self.password_file),
        }
        values.update(changes)
        return OffsitePlan(**values)  # type: ignore[arg-type]

    def job(self, plan: OffsitePlan | None = None) -> OffsiteJob:
        async def alert(record: OffsiteRunRecord) -> None:
            await self.notifier.offsite_failed(
                record.kind, record.engine, record.id, record.outcome, record.error
            )

        return OffsiteJob(
            plan or self.plan(),
            self.store,
            self.archive,
            on_failure=alert,
            environ={"PATH": os.environ["PATH"], "HOME": str(self.base)},
        )

    def photo(self, relative: str, size: int) -> Path:
        path = self.archive / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        return path

    def restic(self, *arguments: str) -> str:
        completed = subprocess.run(
            ["restic", "--repo", str(self.repository), "--no-cache", *arguments],
            env={**os.environ, "RESTIC_PASSWORD_FILE": str(self.password_file)},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return completed.stdout

    def snapshots(self) -> list[dict[str, object]]:
        found: list[dict[str, object]] = json.loads(self.restic("snapshots", "--json"))
        return found

    def run(self, coroutine: object) -> OffsiteRunRecord:
        async def run_and_wait() -> OffsiteRunRecord:
            record: OffsiteRunRecord = await coroutine  # type: ignore[misc]
            assert await self.notifier.wait_idle(30)
            return record

        return asyncio.run(run_and_wait())


@pytest.fixture(scope="module")
def template_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One repository made by `offsite init` (restic init), copied for each test that needs
    one: restic's key derivation makes every init cost a second or more."""
    made = Offsite(tmp_path_factory.mktemp("template"))
    try:
        result = asyncio.run(made.job().init())
        assert result.exit_code == 0, result.output
        assert (made.repository / "config").is_file()
    finally:
        made.store.close()
    return made.repository


@pytest.fixture
def offsite(tmp_path: Path, template_repository: Path) -> Iterator[Offsite]:
    made = Offsite(tmp_path)
    made.template = template_repository
    try:
        yield made
    finally:
        made.store.close()


def initialised(offsite: Offsite) -> Offsite:
    """The test's own copy of the repository `offsite init` made."""
    shutil.copytree(offsite.template, offsite.repository)
    return offsite


def test_a_first_copy_makes_a_snapshot_of_the_archive_without_the_working_folder(
    offsite: Offsite,
) -> None:
    """The first copy records a complete run with restic's snapshot id, the bytes it added and
    the new files; the snapshot holds the photos and not the .rollkeeper working folder."""
    initialised(offsite)
    offsite.photo("2024/2024-07/IMG_0001.HEIC", 300_000)
    offsite.photo("2024/2024-07/IMG_0001.MOV", 500_000)
    offsite.photo(".rollkeeper/partial/IMG_0002.HEIC.partial", 10_000)

    record = offsite.run(offsite.job().copy("command"))

    assert record.outcome == "complete" and record.exit_code == 0 and record.error == ""
    assert record.files_new == 2
    assert record.bytes_added is not None and 800_000 <= record.bytes_added < 900_000
    (snapshot,) = offsite.snapshots()
    assert str(snapshot["short_id"]) == record.snapshot_id or str(snapshot["id"]).startswith(
        record.snapshot_id
    )
    assert snapshot["tags"] == ["rollkeeper"]
    listed = offsite.restic("ls", "latest").splitlines()
    assert str(offsite.archive / "2024/2024-07/IMG_0001.MOV") in listed
    assert not any(".rollkeeper" in line for line in listed)
    assert record.duration_seconds is not None and record.duration_seconds > 0
    assert offsite.store.offsite_repository.runs() == [record]
    assert not offsite.hook_output.exists()  # no failure, no alert


def test_a_new_photo_makes_an_incremental_copy(offsite: Offsite) -> None:
    """After a new photo, the next copy adds only that photo: one new file, about its size in
    bytes (restic deduplicates the rest), and a second snapshot."""
    initialised(offsite)
    offsite.photo("2024/2024-07/IMG_0001.HEIC", 400_000)
    first = offsite.run(offsite.job().copy("backup"))
    offsite.photo("2024/2024-08/IMG_0002.HEIC", 120_000)

    second = offsite.run(offsite.job().copy("backup"))

    assert (first.outcome, second.outcome) == ("complete", "complete")
    assert second.files_new == 1
    assert second.bytes_added is not None and 120_000 <= second.bytes_added < 200_000
    assert second.snapshot_id and second.snapshot_id != first.snapshot_id
    assert len(offsite.snapshots()) == 2


def test_a_failing_repository_is_recorded_and_alerted(offsite: Offsite) -> None:
    """A copy to a repository that does not exist fails: the run is recorded failed with restic's
    exit code and its own words, and the on_failure hook is told (event offsite_failure)."""
    offsite.photo("2024/2024-07/IMG_0001.HEIC", 50_000)

    record = offsite.run(offsite.job().copy("backup"))

    assert record.outcome == "failed" and record.exit_code == 1
    assert "Is there a repository at the following location?" in record.error
    assert offsite.store.offsite_repository.runs()[0].outcome == "failed"
    told = json.loads(offsite.hook_output.read_text())
    assert told["ROLLKEEPER_EVENT"] == "offsite_failure"
    assert told["ROLLKEEPER_RUN_ID"] == str(record.id)
    assert told["ROLLKEEPER_OUTCOME"] == "failed"
    assert "repository" in told["ROLLKEEPER_ERROR"]


def test_a_wrong_password_is_a_failure_too(offsite: Offsite) -> None:
    """A repository that exists but refuses the password: failed, with restic's reason."""
    initialised(offsite)
    offsite.photo("2024/2024-07/IMG_0001.HEIC", 50_000)
    wrong = offsite.base / "wrong"
    wrong.write_text("not it\n")
    wrong.chmod(0o600)

    record = offsite.run(offsite.job(offsite.plan(password_file=str(wrong))).copy("backup"))

    assert record.outcome == "failed"
    assert "wrong password" in record.error
    assert offsite.snapshots() == []


def test_an_unmounted_archive_is_never_copied(offsite: Offsite) -> None:
    """An empty archive folder (an unmounted disk's mount point) is a skipped run with the
    reason; restic is not run, so no empty snapshot appears, and the skip is alerted nowhere
    but recorded for status."""
    initialised(offsite)

    record = offsite.run(offsite.job().copy("backup"))

    assert record.outcome == "skipped" and record.exit_code is None
    assert "is empty (is its disk mounted?)" in record.error
    assert offsite.snapshots() == []


def test_offsite_check_runs_restic_check_and_a_damaged_repository_fails_it(
    offsite: Offsite,
) -> None:
    """offsite check is restic's own check: it passes on a sound repository and fails, recorded
    and alerted, once a data pack of the repository is cut short."""
    initialised(offsite)
    offsite.photo("2024/2024-07/IMG_0001.HEIC", 200_000)
    assert offsite.run(offsite.job().copy("command")).outcome == "complete"

    passed = offsite.run(offsite.job().check("command"))
    assert (passed.kind, passed.outcome, passed.exit_code) == ("check", "complete", 0)

    packs = [path for path in (offsite.repository / "data").rglob("*") if path.is_file()]
    assert packs
    # The photo's pack (the largest): a cut-short tree pack would make restic retry for long.
    os.truncate(max(packs, key=lambda pack: pack.stat().st_size), 1_000)
    failed = offsite.run(offsite.job().check("command"))
    assert failed.outcome == "failed" and failed.exit_code != 0
    assert "repository contains errors" in failed.error
    assert json.loads(offsite.hook_output.read_text())["ROLLKEEPER_EVENT"] == "offsite_failure"


def test_snapshots_are_forgotten_only_with_a_retention_policy(offsite: Offsite) -> None:
    """Without retention every snapshot stays; with --keep-last 1 the older ones are forgotten
    and pruned after the copy (restic's own policy, the user's words)."""
    initialised(offsite)
    for number in range(3):
        offsite.photo(f"2024/2024-07/IMG_000{number}.HEIC", 30_000)
        assert offsite.run(offsite.job().copy("backup")).outcome == "complete"
    assert len(offsite.snapshots()) == 3

    offsite.photo("2024/2024-07/IMG_0009.HEIC", 30_000)
    kept = offsite.run(offsite.job(offsite.plan(retention=("--keep-last", "1"))).copy("backup"))

    assert kept.outcome == "complete" and kept.error == ""
    (snapshot,) = offsite.snapshots()
    assert str(snapshot["id"]).startswith(kept.snapshot_id)


@pytest.mark.skipif(shutil.which("rclone") is None, reason="rclone is not installed")
def test_rclone_copies_to_a_local_remote_incrementally_and_checks_it(offsite: Offsite) -> None:
    """rclone's local backend: a first copy of two files, an incremental one of the new photo,
    the working folder left out, and rclone check passing on the copy."""
    remote = offsite.base / "remote"
    plan = OffsitePlan("rclone", str(remote))
    offsite.photo("2024/2024-07/IMG_0001.HEIC", 60_000)
    offsite.photo("2024/2024-07/IMG_0001.MOV", 40_000)
    offsite.photo(".rollkeeper/quarantine/bad.HEIC", 1_000)

    first = offsite.run(offsite.job(plan).copy("command"))
    offsite.photo("2024/2024-08/IMG_0002.HEIC", 25_000)
    second = offsite.run(offsite.job(plan).copy("command"))
    check = offsite.run(offsite.job(plan).check("command"))

    assert (first.outcome, first.files_new, first.bytes_added) == ("complete", 2, 100_000)
    assert (second.outcome, second.files_new, second.bytes_added) == ("complete", 1, 25_000)
    assert (remote / "2024/2024-08/IMG_0002.HEIC").stat().st_size == 25_000
    assert not (remote / ".rollkeeper").exists()
    assert check.outcome == "complete"


def test_device_backup_snapshots_go_offsite_with_the_archive(offsite: Offsite) -> None:
    """With device backups on, the composition root hands their folder to restic beside the
    archive: one snapshot holds both."""
    from rollkeeper import bootstrap

    initialised(offsite)
    offsite.photo("2024/2024-07/IMG_0001.HEIC", 20_000)
    snapshots = offsite.base / "device-backups"
    (snapshots / "00008110-00AA").mkdir(parents=True)
    (snapshots / "00008110-00AA" / "Manifest.db").write_bytes(os.urandom(5_000))
    config_path = offsite.base / "config.toml"
    config_path.write_text(
        f'[archive]\npath = "{offsite.archive}"\n\n[state]\npath = "{offsite.store.path}"\n\n'
        f'[device_backup]\nenabled = true\npath = "{snapshots}"\n\n'
        f'[offsite]\nengine = "restic"\nrepository = "{offsite.repository}"\n'
        f'password_file = "{offsite.password_file}"\n'
    )
    config = bootstrap.load_command_config(str(config_path), dict(os.environ))
    assert config is not None
    job = bootstrap.offsite_job(config, offsite.store, None, {"PATH": os.environ["PATH"]})
    assert job is not None

    record = offsite.run(job.copy("command"))

    assert record.outcome == "complete" and record.files_new == 2
    listed = offsite.restic("ls", "latest").splitlines()
    assert str(snapshots / "00008110-00AA" / "Manifest.db") in listed
    assert str(offsite.archive / "2024/2024-07/IMG_0001.HEIC") in listed
