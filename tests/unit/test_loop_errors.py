"""The service's loop handler: a lost phone's orphaned requests are quiet, the rest is loud."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pymobiledevice3.exceptions import ConnectionTerminatedError
from structlog.testing import capture_logs

from rollkeeper.service.loop_errors import handle_loop_error


def test_an_orphaned_request_of_a_lost_connection_is_one_debug_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A future failed with ConnectionTerminatedError that nobody awaited is logged as the
    debug event orphaned_request_after_disconnect, not as asyncio's ERROR traceback."""
    loop = asyncio.new_event_loop()
    try:
        future: asyncio.Future[None] = loop.create_future()
        context = {
            "message": "Future exception was never retrieved",
            "exception": ConnectionTerminatedError(),
            "future": future,
        }
        with capture_logs() as events, caplog.at_level(logging.ERROR, logger="asyncio"):
            handle_loop_error(loop, context)
    finally:
        loop.close()
    assert [(event["event"], event["log_level"]) for event in events] == [
        ("orphaned_request_after_disconnect", "debug")
    ]
    assert not [record for record in caplog.records if record.name == "asyncio"]


def test_any_other_unretrieved_error_still_reaches_asyncio_s_own_report(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception that is not a lost phone connection is reported by asyncio's default
    handler at ERROR level, as before."""
    loop = asyncio.new_event_loop()
    try:
        context = {
            "message": "Future exception was never retrieved",
            "exception": ValueError("a real bug"),
            "future": loop.create_future(),
        }
        with capture_logs() as events, caplog.at_level(logging.ERROR, logger="asyncio"):
            handle_loop_error(loop, context)
    finally:
        loop.close()
    assert events == []
    assert any(
        record.name == "asyncio"
        and record.levelno == logging.ERROR
        and "a real bug" in repr(record.exc_info)
        for record in caplog.records
    )
