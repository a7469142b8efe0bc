"""Log set-up: JSON lines off a terminal, console on one, secrets never rendered."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from rollkeeper.host.logs import REDACTED, configure_logging, get_logger, is_secret_field


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "rollkeeper":
            root.removeHandler(handler)
    structlog.reset_defaults()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_auto_format_writes_json_lines_with_utc_iso_timestamps_off_a_terminal() -> None:
    """Off a terminal the auto format writes one JSON object per event, with its fields, its level
    and a UTC ISO timestamp."""
    stream = io.StringIO()
    configure_logging("info", "auto", stream)
    get_logger("rollkeeper.test").info("file_archived", udid="U1", run_id=7, bytes=1024)
    [event] = _json_lines(stream)
    assert event["event"] == "file_archived"
    assert event["udid"] == "U1"
    assert event["run_id"] == 7
    assert event["level"] == "info"
    assert event["timestamp"].endswith("Z")
    assert "T" in event["timestamp"]


def test_auto_format_renders_for_people_on_a_terminal() -> None:
    """On a terminal the auto format writes text for people, not JSON."""
    stream = _Terminal()
    configure_logging("info", "auto", stream)
    get_logger().info("backup_started", udid="U1")
    text = stream.getvalue()
    assert "backup_started" in text
    assert "udid=U1" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_level_filters_events() -> None:
    """Events below the configured level are not written."""
    stream = io.StringIO()
    configure_logging("warning", "json", stream)
    log = get_logger()
    log.info("quiet_event")
    log.warning("loud_event")
    assert [event["event"] for event in _json_lines(stream)] == ["loud_event"]


def test_secret_fields_and_pem_blocks_are_redacted() -> None:
    """Secret fields, nested ones included, and PEM blocks inside text are redacted, while other
    fields are kept as they are."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----"
    get_logger().info(
        "pair_record_loaded",
        udid="U1",
        pair_record={"HostID": "H", "HostPrivateKey": pem},
        HostPrivateKey=pem,
        host_certificate="abc",
        RootCertificate=b"-----BEGIN CERTIFICATE-----",
        escrow_bag=b"xx",
        detail=f"got {pem} from disk",
        nested={"HostCertificate": "c", "DeviceName": "Ann's iPhone"},
        key_path="archive.layout",
    )
    [event] = _json_lines(stream)
    assert event["udid"] == "U1"
    assert event["pair_record"] == REDACTED
    assert event["HostPrivateKey"] == REDACTED
    assert event["host_certificate"] == REDACTED
    assert event["RootCertificate"] == REDACTED
    assert event["escrow_bag"] == REDACTED
    assert event["detail"] == f"got {REDACTED} from disk"
    assert event["nested"] == {"HostCertificate": REDACTED, "DeviceName": "Ann's iPhone"}
    assert event["key_path"] == "archive.layout"
    assert "MIIEabc" not in stream.getvalue()


def test_standard_library_loggers_share_the_format_and_the_redaction() -> None:
    """Standard library loggers such as pymobiledevice3's write in the same format, with their
    logger name and PEM blocks redacted."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    logging.getLogger("pymobiledevice3.lockdown").warning(
        "saving -----BEGIN CERTIFICATE-----\nXYZ\n-----END CERTIFICATE----- now"
    )
    [event] = _json_lines(stream)
    assert event["logger"] == "pymobiledevice3.lockdown"
    assert event["level"] == "warning"
    assert "XYZ" not in event["event"]


def test_exceptions_become_structured_tracebacks_in_json() -> None:
    """A logged exception becomes a structured traceback in JSON, with its type."""
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    try:
        raise RuntimeError("disk full")
    except RuntimeError:
        get_logger().exception("run_failed", udid="U1")
    [event] = _json_lines(stream)
    assert event["event"] == "run_failed"
    assert event["exception"][0]["exc_type"] == "RuntimeError"


def test_configuring_twice_keeps_one_handler() -> None:
    """Configuring logging twice leaves one handler, writing to the last stream only."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "json", first)
    configure_logging("info", "json", second)
    get_logger().info("once")
    assert first.getvalue() == ""
    assert len(_json_lines(second)) == 1


def test_bad_level_and_format_are_refused() -> None:
    """An unknown log level or format is refused with ValueError."""
    with pytest.raises(ValueError, match="log level"):
        configure_logging("loud")
    with pytest.raises(ValueError, match="log format"):
        configure_logging("info", "xml")


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("HostPrivateKey", True),
        ("DevicePublicKey", True),
        ("pair_record", True),
        ("pairRecord", True),
        ("SystemBUID", False),
        ("udid", False),
        ("monkey", False),
        ("key_path", False),
        ("healthcheck_token", True),
    ],
)
def test_secret_field_names(name: str, secret: bool) -> None:
    """Key, pair record and token field names count as secret; UDIDs, BUIDs and key paths do not."""
    assert is_secret_field(name) is secret
