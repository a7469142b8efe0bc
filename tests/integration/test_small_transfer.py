"""The small-file copy (one READ, one worker-thread call) against the simulator, through
pymobiledevice3: the partial holds every byte and its hash, the capture date comes from the
bytes in memory, an earlier partial is replaced whole, and a phone that lies or fails leaves
either nothing or the prefix it found.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollkeeper.device.session import SessionSettings, open_session
from rollkeeper.domain.files import MediaKind
from rollkeeper.importer.hashing import hash_file
from rollkeeper.importer.metadata import read_capture_date
from rollkeeper.importer.small_transfer import SMALL_FILE_BYTES, download_small
from rollkeeper.importer.transfer import SizeMismatchError
from rollkeeper.ports import PhoneReadError
from rollkeeper.simulator import AfcFaults, SimulatorThread
from tests import media

UDID = "00008110-00DD0000000000E5"
FOLDER = "/DCIM/100APPLE"


def settings_for(simulator: SimulatorThread, tmp_path: Path) -> SessionSettings:
    """Session settings reaching the simulator, with a private pairing folder."""
    return SessionSettings(usbmux_address=simulator.address, pairing_dir=tmp_path / "pairing")


def make_phone(root: Path) -> dict[str, Path]:
    """A dated JPEG, a dated video and a blob of 900 KB; their files by phone path."""
    folder = root / "DCIM" / "100APPLE"
    photo = media.make_jpeg(
        folder / "IMG_0001.JPG", datetime(2021, 3, 4, 5, 6, 7), timedelta(hours=2)
    )
    video = media.make_video(
        folder / "IMG_0002.MOV", created_utc=datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    )
    blob = media.make_blob(folder / "IMG_0003.JPG", 900_000, seed="small-transfer/blob")
    return {f"{FOLDER}/{path.name}": path for path in (photo, video, blob)}


async def test_a_small_file_lands_whole_with_its_hash_and_its_capture_date(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """Each small file becomes a partial equal to the phone's file with the phone file's hash;
    the capture date read from the bytes in memory is the one read from the file on disk (a
    photo's EXIF date, a video's mvhd date, none for a blob), and is not read when not asked."""
    phone = make_phone(tmp_path / "phone")
    simulator.add_phone(UDID, tmp_path / "phone")
    work = tmp_path / "archive" / ".rollkeeper" / "partial" / "device"
    (tmp_path / "archive").mkdir()
    counted: list[int] = []
    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        for index, (phone_path, source) in enumerate(sorted(phone.items())):
            kind = MediaKind.VIDEO if source.suffix == ".MOV" else MediaKind.PHOTO
            size = source.stat().st_size
            assert size <= SMALL_FILE_BYTES
            partial = work / f"{index}.partial"
            outcome = await download_small(
                session.files, phone_path, size, partial, counted.append, capture_kind=kind
            )
            assert partial.read_bytes() == source.read_bytes()
            assert outcome.transfer.content_hash == hash_file(source)
            assert outcome.transfer.size == outcome.transfer.bytes_from_phone == size
            assert outcome.capture_read
            assert outcome.capture == read_capture_date(source, kind)
            undated = await download_small(session.files, phone_path, size, partial)
            assert not undated.capture_read and undated.capture is None
    dates = {
        phone_path: read_capture_date(source, MediaKind.PHOTO)
        for phone_path, source in phone.items()
        if source.suffix == ".JPG"
    }
    assert dates[f"{FOLDER}/IMG_0001.JPG"] is not None  # the photo really is dated
    assert dates[f"{FOLDER}/IMG_0003.JPG"] is None  # and the blob is not
    assert sum(counted) == sum(path.stat().st_size for path in phone.values())


async def test_an_earlier_partial_is_replaced_whole_not_appended_to(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A partial left by an earlier attempt (here longer than the file, and of other bytes)
    ends as exactly the phone's file: nothing of the old bytes is kept or hashed."""
    phone = make_phone(tmp_path / "phone")
    simulator.add_phone(UDID, tmp_path / "phone")
    phone_path = f"{FOLDER}/IMG_0003.JPG"
    source = phone[phone_path]
    partial = tmp_path / "archive" / "work" / "blob.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"x" * (source.stat().st_size + 10))
    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        outcome = await download_small(session.files, phone_path, source.stat().st_size, partial)
    assert partial.read_bytes() == source.read_bytes()
    assert outcome.transfer.content_hash == hash_file(source)


@pytest.mark.parametrize("lie", ["grows", "shrinks"])
async def test_a_phone_serving_other_than_its_stat_keeps_no_partial(
    simulator: SimulatorThread, tmp_path: Path, lie: str
) -> None:
    """A file that serves more bytes than its stat (it grows) or fewer (the stat said more)
    raises SizeMismatchError and deletes the partial, an earlier attempt's one included."""
    phone = make_phone(tmp_path / "phone")
    phone_path = f"{FOLDER}/IMG_0003.JPG"
    size = phone[phone_path].stat().st_size
    faults = AfcFaults(grows_by_bytes={phone_path: 100}) if lie == "grows" else AfcFaults()
    simulator.add_phone(UDID, tmp_path / "phone", faults=faults)
    partial = tmp_path / "archive" / "work" / "blob.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(phone[phone_path].read_bytes()[:1000])
    claimed = size if lie == "grows" else size + 5
    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        with pytest.raises(SizeMismatchError) as mismatch:
            await download_small(session.files, phone_path, claimed, partial)
    assert mismatch.value.expected == claimed
    if lie == "grows":
        assert mismatch.value.received > size  # read only until it is known to be longer
    else:
        assert mismatch.value.received == size
    assert not partial.exists()


async def test_a_read_that_fails_midway_leaves_the_earlier_prefix_untouched(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    """A READ that fails after part of the file leaves the disk as it was: the earlier
    attempt's partial is still the same exact prefix of the phone's file."""
    phone = make_phone(tmp_path / "phone")
    phone_path = f"{FOLDER}/IMG_0003.JPG"
    data = phone[phone_path].read_bytes()
    faults = AfcFaults(read_error_after_bytes={phone_path: 0})
    simulator.add_phone(UDID, tmp_path / "phone", faults=faults)
    partial = tmp_path / "archive" / "work" / "blob.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data[:4096])
    async with open_session(UDID, settings_for(simulator, tmp_path)) as session:
        with pytest.raises(PhoneReadError):
            await download_small(session.files, phone_path, len(data), partial)
    assert partial.read_bytes() == data[:4096]
