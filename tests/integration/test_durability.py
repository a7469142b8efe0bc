"""The durability calls on real files: writeback hints, fsync, and folder syncs a batch defers."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest

from rollkeeper.host import durability


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_writeback_starts_on_linux_and_refuses_a_closed_descriptor(tmp_path: Path) -> None:
    """On Linux the writeback hint reaches the kernel (it rejects a closed descriptor with
    EBADF, which a no-op would not) and a real file's range is accepted and keeps its bytes."""
    assert durability.writeback_supported()
    path = tmp_path / "file.partial"
    data = os.urandom(3 * 1024 * 1024)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, data)
        durability.start_writeback(descriptor, 0, len(data))
        durability.fsync_descriptor(descriptor)
    finally:
        os.close(descriptor)
    assert path.read_bytes() == data
    with pytest.raises(OSError) as raised:
        durability.start_writeback(descriptor, 0, len(data))
    assert raised.value.errno == errno.EBADF


def test_folder_syncs_inside_a_batch_are_collected_not_made(tmp_path: Path) -> None:
    """Inside ``deferred_folder_syncs`` a folder fsync is noted for the caller, each folder
    once; the next batch starts with nothing noted (what one batch collected is not another's)."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    with durability.deferred_folder_syncs() as folders:
        durability.fsync_folder(first)
        durability.fsync_folder(second)
        durability.fsync_folder(first)
        durability.fsync_folder(tmp_path / "missing")
    assert folders == {first, second, tmp_path / "missing"}
    with durability.deferred_folder_syncs() as later:
        durability.fsync_folder(second)
    assert later == {second}
