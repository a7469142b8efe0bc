"""``rollkeeper freeable`` against the simulator: phones backed up through the real
pymobiledevice3 client, a real state database, real archive files and ``rollkeeper verify``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rollkeeper.cli import main
from rollkeeper.device.session import SessionSettings
from rollkeeper.importer.job import BackupSettings
from rollkeeper.service.phone_backup import back_up_phone
from rollkeeper.simulator import SimulatorThread
from rollkeeper.store import StateStore
from tests import media

pytestmark = pytest.mark.slow

UDID = "00008110-00CC0000000000C3"
LAYOUT = "{year}/{year}-{month}/{name}"


class Phone:
    """A simulated phone backed up into an archive, and the config that names them."""

    def __init__(self, simulator: SimulatorThread, base: Path) -> None:
        self.roll = media.make_camera_roll(base / "phone")
        simulator.add_phone(UDID, self.roll.root, name="Ana's iPhone")
        self.archive = base / "archive"
        self.archive.mkdir()
        self.state = base / "state.sqlite3"
        self.session = SessionSettings(usbmux_address=simulator.address, pairing_dir=base / "p")
        self.config = base / "config.toml"
        self.config.write_text(
            f'[archive]\npath = "{self.archive}"\n\n[state]\npath = "{self.state}"\n\n'
            f'[device]\npairing_dir = "{base / "p"}"\n'
        )

    async def back_up(self) -> None:
        store = StateStore.open(self.state)
        try:
            turn = await back_up_phone(
                UDID, store, self.session, BackupSettings(self.archive, LAYOUT)
            )
            assert turn.result is not None and turn.result.complete
        finally:
            store.close()

    def archived(self, name: str) -> Path:
        (found,) = self.archive.rglob(name)
        return found


def freeable(phone: Phone, capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str]:
    code = main(["--config", str(phone.config), "freeable", *arguments])
    return code, capsys.readouterr().out


@pytest.fixture
async def phone(simulator: SimulatorThread, tmp_path: Path) -> Phone:
    """The simulated roll backed up, plus a photo taken five days ago backed up after it, and
    the Live Photo IMG_0001's video damaged in the archive and found so by `rollkeeper verify`."""
    made = Phone(simulator, tmp_path)
    await made.back_up()
    recent = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
    media.make_jpeg(
        made.roll.root / "DCIM" / "100APPLE" / "IMG_0100.JPG",
        recent.replace(tzinfo=None),
        timedelta(0),
        seed="recent",
    )
    await made.back_up()
    video = made.archived("IMG_0001.MOV")
    content = bytearray(video.read_bytes())
    content[len(content) // 2] ^= 0xFF
    video.write_bytes(bytes(content))
    assert main(["--config", str(made.config), "verify", "--json"]) == 1  # it found the damage
    return made


def expected_assets(phone: Phone) -> dict[str, list[str]]:
    """Group -> names of the files that must be listed: everything but the damaged Live Photo
    and the recent photo."""
    groups: dict[str, list[str]] = {}
    for item in phone.roll.files:
        if item.group not in ("IMG_0001",):
            groups.setdefault(item.group, []).append(item.name)
    return {group: sorted(names) for group, names in groups.items()}


async def test_freeable_lists_archived_verified_old_photos_with_every_file_of_each(
    phone: Phone, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every asset whose files are all archived, verified and older than 90 days is listed with
    all its files (edit and sidecars with their photo), the total size and the dates they span;
    the photo that failed verification and the photo newer than the cut-off are never listed,
    and both are counted as held back."""
    code, out = freeable(phone, capsys, "--json")
    assert code == 0
    document = json.loads(out)
    listed = {
        asset["files"][0]["phone_path"].rsplit("/", 1)[1].split(".")[0].replace("IMG_E", "IMG_"): [
            file["phone_path"].rsplit("/", 1)[1] for file in asset["files"]
        ]
        for asset in document["assets"]
    }
    assert {key: sorted(names) for key, names in listed.items()} == expected_assets(phone)
    names = [file["phone_path"] for asset in document["assets"] for file in asset["files"]]
    assert "/DCIM/100APPLE/IMG_0001.HEIC" not in names  # its Live Photo video failed
    assert "/DCIM/100APPLE/IMG_0001.MOV" not in names
    assert "/DCIM/100APPLE/IMG_0100.JPG" not in names  # five days old
    assert document["held_back"] == {"failed_verification": 1, "newer_than_cut_off": 1}
    sizes = {item.phone_path: item.size for item in phone.roll.files}
    assert document["total_bytes"] == sum(sizes[name] for name in names)
    assert document["file_count"] == len(names)
    assert document["first_taken_at"].startswith("2016-12-24")  # the old JPEG
    assert document["favourites_known"] is False
    assert any("iCloud" in warning for warning in document["warnings"])


async def test_the_text_says_what_to_do_and_warns_about_icloud(
    phone: Phone, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text gives the count, size and date span, why the others were held back, that
    favourites are not known yet, the iCloud warning and that rollkeeper never deletes."""
    code, out = freeable(phone, capsys)
    assert code == 0
    assets = len(expected_assets(phone))
    assert f"Safe to free on the phone: {assets:,} photos and videos" in out
    assert "taken 2016-12-24 to " in out
    assert "Held back: 1 that failed their last verification (run `rollkeeper verify`)." in out
    assert "Held back: 1 that are newer than the cut-off." in out
    assert "Favourites are not known yet" in out
    assert "deletes it from iCloud and from every device" in out
    assert "rollkeeper never deletes anything on the phone" in out
    assert "IMG_0100" not in out and "IMG_0001.MOV" not in out


async def test_a_long_cut_off_lists_nothing_and_the_device_filter_applies(
    phone: Phone, capsys: pytest.CaptureFixture[str]
) -> None:
    """--older-than 20y holds every photo back as too new; --device with the phone's name or
    UDID lists the same as without; an unknown phone is a usage error."""
    code, out = freeable(phone, capsys, "--older-than", "20y", "--json")
    document = json.loads(out)
    assert code == 0 and document["assets"] == [] and document["total_bytes"] == 0
    assert "failed_verification" in document["held_back"]
    _, all_out = freeable(phone, capsys, "--json")
    _, by_name = freeable(phone, capsys, "--device", "Ana's iPhone", "--json")
    _, by_udid = freeable(phone, capsys, "--device", UDID, "--json")
    assert json.loads(by_name)["assets"] == json.loads(all_out)["assets"]
    assert json.loads(by_udid)["assets"] == json.loads(all_out)["assets"]
    code, _ = freeable(phone, capsys, "--device", "nobody")
    assert code == 2


async def test_an_unplugged_archive_disk_frees_nothing(
    phone: Phone, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the archive folder gone (a disk not mounted), nothing is called safe: exit 1."""
    phone.archive.rename(phone.archive.with_name("elsewhere"))
    code, out = freeable(phone, capsys)
    assert code == 1 and out == ""


async def test_a_file_verified_again_after_repair_is_listed_again(
    phone: Phone, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once the damaged video is put back as it was and verify matches it, the Live Photo is
    listed again: a failed check holds a file back only until a later match."""
    original = next(item for item in phone.roll.files if item.name == "IMG_0001.MOV")
    phone.archived("IMG_0001.MOV").write_bytes(original.host_path.read_bytes())
    assert main(["--config", str(phone.config), "verify", "--json"]) == 0
    capsys.readouterr()
    _, out = freeable(phone, capsys, "--json")
    names = [file["phone_path"] for asset in json.loads(out)["assets"] for file in asset["files"]]
    assert "/DCIM/100APPLE/IMG_0001.MOV" in names and "/DCIM/100APPLE/IMG_0001.HEIC" in names


async def test_a_file_with_an_open_or_lost_finding_is_never_offered(
    phone: Phone, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file the presence check found missing or damaged (open, or lost) is held back like
    one in question, even when its last re-hash matched."""
    store = StateStore.open(phone.state)
    try:
        path = str(phone.archived("IMG_0003.JPG").relative_to(phone.archive))
        store.archive_truth.open_finding(path, "missing", "0" * 64, "", None)
    finally:
        store.close()
    code, out = freeable(phone, capsys, "--json")
    assert code == 0
    names = [file["phone_path"] for asset in json.loads(out)["assets"] for file in asset["files"]]
    assert "/DCIM/100APPLE/IMG_0003.JPG" not in names
    assert json.loads(out)["held_back"]["missing_or_changed_in_archive"] == 1
