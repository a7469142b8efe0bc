"""`rollkeeper history` against a real state database."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rollkeeper.cli import build_parser
from rollkeeper.commands.history import run_history
from rollkeeper.store import RunCounts, StateStore

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


class History:
    def __init__(self, root: Path) -> None:
        self.state_path = root / "state.sqlite3"
        self.config_path = root / "config.toml"
        self.config_path.write_text(
            f'[archive]\npath = "{root / "archive"}"\n[state]\npath = "{self.state_path}"\n'
            f'[device]\npairing_dir = "{root / "pairing"}"\n'
        )
        self.environ = {"HOME": str(root), "PATH": os.environ.get("PATH", os.defpath)}

    def run(self, *flags: str) -> tuple[int, str]:
        args = build_parser().parse_args(["--config", str(self.config_path), "history", *flags])
        out = io.StringIO()
        return run_history(args, environ=self.environ, out=out), out.getvalue()

    def json(self, *flags: str) -> dict[str, Any]:
        code, text = self.run("--json", *flags)
        assert code == 0
        document: dict[str, Any] = json.loads(text)
        return document


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path)


def _populate(path: Path) -> dict[str, int]:
    store = StateStore.open(path)
    store.record_device_seen("U1", name="Ann", now=T0)
    store.record_device_seen("U2", name="Bob", now=T0)
    ids: dict[str, int] = {}
    ids["ann_complete"] = store.start_run("U1", now=T0)
    store.finish_run(
        ids["ann_complete"],
        "complete",
        RunCounts(files_found=10, files_copied=10, bytes_copied=25_000_000),
        now=T0 + timedelta(minutes=2),
    )
    ids["bob_failed"] = store.start_run("U2", now=T0 + timedelta(hours=1))
    store.add_run_failure(ids["bob_failed"], "/DCIM/100APPLE/IMG_0007.MOV", "read_error", "AFC 4")
    store.finish_run(
        ids["bob_failed"],
        "failed",
        RunCounts(files_found=5, files_copied=2, bytes_copied=100, files_failed=1, files_pending=2),
        error="archive disk unplugged",
        now=T0 + timedelta(hours=1, seconds=30),
    )
    ids["ann_incomplete"] = store.start_run("U1", now=T0 + timedelta(days=1))
    store.add_run_failure(ids["ann_incomplete"], "/DCIM/100APPLE/../x", "name_rejected")
    store.add_run_failure(ids["ann_incomplete"], "/DCIM/100APPLE/IMG_0011.HEIC", "size_changed")
    store.finish_run(
        ids["ann_incomplete"],
        "incomplete",
        RunCounts(files_found=12, files_already_archived=10, files_failed=1, items_rejected=1),
        now=T0 + timedelta(days=1, minutes=1),
    )
    ids["ann_running"] = store.start_run("U1", now=T0 + timedelta(days=2))
    store.close()
    return ids


def test_history_before_any_backup(history: History) -> None:
    """history before any backup says so, in text and in JSON, without creating the state
    database."""
    assert history.run() == (0, "No backup has run yet.\n")
    assert history.json()["runs"] == []
    assert not history.state_path.exists()


def test_history_lists_runs_newest_first_with_counts_bytes_duration_and_errors(
    history: History,
) -> None:
    """history lists the runs newest first with their phone, counts, bytes, duration, error and
    failures; a run still going has no duration."""
    ids = _populate(history.state_path)
    runs = history.json()["runs"]
    assert [run["id"] for run in runs] == [
        ids["ann_running"],
        ids["ann_incomplete"],
        ids["bob_failed"],
        ids["ann_complete"],
    ]
    failed = runs[2]
    assert failed["udid"] == "U2"
    assert failed["device_name"] == "Bob"
    assert failed["outcome"] == "failed"
    assert failed["files_copied"] == 2
    assert failed["bytes_copied"] == 100
    assert failed["files_pending"] == 2
    assert failed["duration_seconds"] == 30.0
    assert failed["error"] == "archive disk unplugged"
    assert failed["failures"] == [
        {"phone_path": "/DCIM/100APPLE/IMG_0007.MOV", "reason": "read_error", "detail": "AFC 4"}
    ]
    assert runs[0]["outcome"] == "running"
    assert runs[0]["duration_seconds"] is None

    code, text = history.run()
    assert code == 0
    assert "Bob  failed  30 s" in text
    assert "error: archive disk unplugged" in text
    assert "copied 10 (25.0 MB)" in text
    assert "FAILED" not in text


def test_failed_lists_only_runs_with_failures_and_each_file_with_its_reason(
    history: History,
) -> None:
    """history --failed lists only the runs with failures, each failed file with its reason, and
    then the files failing on the phone now."""
    ids = _populate(history.state_path)
    store = StateStore.open(history.state_path)
    failing = store.observe_file("U2", "/DCIM/100APPLE", "IMG_0007.MOV", 900, 1, 1, now=T0)
    store.set_file_status(failing.id, "failed", "read_error")
    store.close()
    runs = history.json("--failed")["runs"]
    assert [run["id"] for run in runs] == [ids["ann_incomplete"], ids["bob_failed"]]
    assert [failure["reason"] for failure in runs[0]["failures"]] == [
        "name_rejected",
        "size_changed",
    ]
    code, text = history.run("--failed")
    assert code == 0
    assert "FAILED /DCIM/100APPLE/IMG_0011.HEIC: size_changed\n" in text
    assert "FAILED /DCIM/100APPLE/IMG_0007.MOV: read_error (AFC 4)\n" in text
    assert text.endswith(
        "Failing now (on the phone at its last scan, not backed up):\n"
        "  Bob: /DCIM/100APPLE/IMG_0007.MOV: read_error\n"
    )
    assert history.json("--failed")["failing_now"] == [
        {
            "udid": "U2",
            "device_name": "Bob",
            "phone_path": "/DCIM/100APPLE/IMG_0007.MOV",
            "size": 900,
            "reason": "read_error",
        }
    ]
    assert history.json("--failed", "--device", "U1")["failing_now"] == []


def test_device_filter_by_udid_or_name(history: History) -> None:
    """--device selects runs by UDID or by phone name, and --limit keeps the newest runs."""
    ids = _populate(history.state_path)
    assert [run["id"] for run in history.json("--device", "U2")["runs"]] == [ids["bob_failed"]]
    by_name = history.json("--device", "Ann", "--failed")["runs"]
    assert [run["id"] for run in by_name] == [ids["ann_incomplete"]]
    assert [run["id"] for run in history.json("--limit", "1")["runs"]] == [ids["ann_running"]]


def test_an_unknown_device_is_a_one_line_error(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown --device is one error line listing the known phones, with exit code 1."""
    _populate(history.state_path)
    code, text = history.run("--device", "U9")
    assert code == 1
    assert text == ""
    error = capsys.readouterr().err
    assert error == (
        "rollkeeper history: no phone 'U9' in the state database; "
        "known phones: U1 (Ann), U2 (Bob)\n"
    )


def test_no_failures_says_so(history: History) -> None:
    """history --failed with no failures says so."""
    store = StateStore.open(history.state_path)
    store.record_device_seen("U1", name="Ann", now=T0)
    run_id = store.start_run("U1", now=T0)
    store.finish_run(run_id, "complete", RunCounts(), now=T0)
    store.close()
    assert history.run("--failed") == (0, "No runs with failures.\n")
