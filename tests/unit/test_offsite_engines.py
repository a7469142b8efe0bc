"""What the offsite engines are run with and what their output is read as (pure parts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollkeeper.offsite.engines import (
    EnvironmentFileError,
    OffsitePlan,
    check_command,
    copy_command,
    copy_figures,
    engine_environment,
    error_text,
    forget_command,
    parse_environment_file,
)

ARCHIVE = Path("/media/ana/Photos/archive")


def test_restic_copies_the_archive_without_the_working_folder_and_tags_it() -> None:
    """restic backs up the archive by its absolute path, excludes .rollkeeper (partials,
    quarantine), tags the snapshot and adds the user's extra arguments before the sources."""
    plan = OffsitePlan("restic", "/mnt/nas/restic", extra_arguments=("--limit-upload", "100"))
    assert copy_command(plan, [ARCHIVE]) == [
        "restic", "backup", "--json", "--tag", "rollkeeper",
        "--exclude", str(ARCHIVE / ".rollkeeper"),
        "--limit-upload", "100",
        str(ARCHIVE),
    ]  # fmt: skip


def test_rclone_copies_and_never_syncs() -> None:
    """rclone is run as `copy` (which never deletes on the remote), with the working folder
    excluded and a final stats line to read the bytes from."""
    argv = copy_command(OffsitePlan("rclone", "b2:bucket/photos"), [ARCHIVE])
    assert argv[:4] == ["rclone", "copy", str(ARCHIVE), "b2:bucket/photos"]
    assert "sync" not in argv
    assert argv[argv.index("--exclude") + 1] == "/.rollkeeper/**"


def test_nothing_is_ever_forgotten_without_a_retention_policy() -> None:
    """restic forget runs only with the user's keep policy, always with --prune and only on
    rollkeeper's snapshots; without retention, and for rclone, there is no forget at all."""
    assert forget_command(OffsitePlan("restic", "/r")) is None
    assert forget_command(OffsitePlan("rclone", "r:x", retention=("--keep-last", "1"))) is None
    assert forget_command(OffsitePlan("restic", "/r", retention=("--keep-daily", "7"))) == [
        "restic", "forget", "--tag", "rollkeeper", "--prune", "--keep-daily", "7"
    ]  # fmt: skip


def test_checks_are_the_engines_own() -> None:
    """offsite check is restic check (--read-data on request) or rclone check --one-way
    (--download on request)."""
    assert check_command(OffsitePlan("restic", "/r"), ARCHIVE, False) == ["restic", "check"]
    assert check_command(OffsitePlan("restic", "/r"), ARCHIVE, True)[-1] == "--read-data"
    rclone = check_command(OffsitePlan("rclone", "r:x"), ARCHIVE, True)
    assert rclone[:5] == ["rclone", "check", str(ARCHIVE), "r:x", "--one-way"]
    assert rclone[-1] == "--download"


def test_secrets_go_the_engines_way_and_the_service_managers_variables_stay_behind(
    tmp_path: Path,
) -> None:
    """restic gets its repository and password file by variable (an inherited password of
    another repository is dropped), the environment file's values are added, and systemd's
    NOTIFY_SOCKET never reaches the engine."""
    plan = OffsitePlan("restic", "s3:host/bucket", password_file="/secret/pw")
    environment = engine_environment(
        plan,
        {"HOME": "/home/ana", "NOTIFY_SOCKET": "/run/x", "RESTIC_PASSWORD": "other"},
        {"AWS_ACCESS_KEY_ID": "key"},
    )
    assert environment["RESTIC_REPOSITORY"] == "s3:host/bucket"
    assert environment["RESTIC_PASSWORD_FILE"] == "/secret/pw"
    assert environment["AWS_ACCESS_KEY_ID"] == "key"
    assert "RESTIC_PASSWORD" not in environment and "NOTIFY_SOCKET" not in environment
    secret = tmp_path / "rclone-pass"
    secret.write_text("hunter2\n")
    rclone = engine_environment(OffsitePlan("rclone", "r:x", password_file=str(secret)), {}, {})
    assert rclone["RCLONE_CONFIG_PASS"] == "hunter2"


def test_the_environment_file_takes_key_value_lines_and_names_a_bad_one() -> None:
    """Comments, blank lines, export and quotes are accepted; a line that is not KEY=VALUE is
    an error naming its line."""
    text = "# B2\nexport B2_ACCOUNT_ID=abc\n\nB2_ACCOUNT_KEY='s e c'\nEMPTY=\n"
    assert parse_environment_file(text) == {
        "B2_ACCOUNT_ID": "abc",
        "B2_ACCOUNT_KEY": "s e c",
        "EMPTY": "",
    }
    with pytest.raises(EnvironmentFileError, match=r"env:2: not KEY=VALUE"):
        parse_environment_file("A=1\nnot a line\n", "env")


def test_a_password_in_the_destination_is_never_shown() -> None:
    """A rest-server URL with user:password is stored and shown without the password."""
    plan = OffsitePlan("restic", "rest:https://ana:s3cret@nas.local:8000/photos")
    assert plan.shown_destination == "rest:https://***@nas.local:8000/photos"
    assert "s3cret" not in plan.shown_destination


def test_figures_come_from_the_engines_json() -> None:
    """restic's summary line gives the snapshot id, bytes added and new files; rclone's final
    stats the bytes and transfers; output without them gives no figures (not zeros)."""
    restic = (
        '{"message_type":"status","percent_done":0.5}\n'
        '{"message_type":"summary","files_new":3,"data_added":1234,"snapshot_id":"1a2b3c4d"}\n'
    )
    figures = copy_figures(OffsitePlan("restic", "/r"), restic, "")
    assert (figures.snapshot_id, figures.bytes_added, figures.files_new) == ("1a2b3c4d", 1234, 3)
    rclone = '{"level":"warning","msg":"x","stats":{"bytes":999,"transfers":2}}\n'
    figures = copy_figures(OffsitePlan("rclone", "r:x"), "", rclone)
    assert (figures.snapshot_id, figures.bytes_added, figures.files_new) == ("", 999, 2)
    assert copy_figures(OffsitePlan("restic", "/r"), "garbage", "").bytes_added is None


def test_the_error_is_the_engines_own_words() -> None:
    """The error recorded is the engine's last lines on stderr (rclone's JSON errors by their
    message, its warnings left out), cut to a bounded length."""
    assert error_text("", "Fatal: wrong password or no key found\n") == (
        "Fatal: wrong password or no key found"
    )
    rclone = (
        '{"level":"warning","msg":"Config file not found"}\n'
        '{"level":"error","msg":"Failed to copy: 403 Forbidden"}\n'
    )
    assert error_text("", rclone) == "Failed to copy: 403 Forbidden"
    assert len(error_text("", "x" * 5000)) == 400
