"""XMP sidecars on real files with a real state database: what they carry (read back by
exiftool, which Immich uses), every version kept, another tool's edit never overwritten, a
suspect set refused whole."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from rollkeeper.domain.layout import CaptureDate
from rollkeeper.domain.library import SidecarFacts
from rollkeeper.library.sidecars import (
    EDITED_ELSEWHERE,
    NOT_OURS,
    SidecarKeeper,
    SidecarOutcome,
    sidecar_path,
)
from rollkeeper.library.xmp import NAMESPACES, sidecar_bytes
from rollkeeper.store import StateStore

DATE = CaptureDate(datetime(2023, 7, 14, 18, 32, 5), timedelta(hours=2), "library")
HOSTILE = 'Rome & "Paris" <2023> </rdf:li><rdf:li>Injected'


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(tmp_path / "state" / "state.sqlite3")
    yield opened
    opened.close()


def apply(
    archive: Path, store: StateStore, desired: dict[str, SidecarFacts], limit: float = 5
) -> SidecarOutcome:
    """One application as the library step runs it: prepare, record the versions, commit."""
    versions = store.sidecar_repository
    keeper = SidecarKeeper(archive, limit)
    outcome = keeper.prepare(desired, versions.known_sidecars())
    versions.add_sidecar_versions(
        [(write.relative_path, write.content_hash, write.facts) for write in outcome.writes]
        + outcome.adopted
    )
    keeper.commit(outcome)
    return outcome


def archive_with(root: Path, *names: str) -> Path:
    for name in names:
        path = root / "2023" / "2023-07" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"photo bytes " + name.encode())
    return root


def relative(name: str) -> str:
    return f"2023/2023-07/{name}"


def test_a_sidecar_carries_albums_rating_keywords_uuid_and_date(
    tmp_path: Path, store: StateStore
) -> None:
    """The sidecar beside IMG_0001.HEIC is IMG_0001.HEIC.xmp; parsed back, it holds every album
    title exactly (escaped, never injected), the rating 5 of a favourite, the hidden and deleted
    keywords, the hierarchical album tags, the UUID and the date with its offset."""
    archive = archive_with(tmp_path / "archive", "IMG_0001.HEIC")
    facts = SidecarFacts(("UUID-1",), (HOSTILE, "Trip"), True, True, True, DATE)
    outcome = apply(archive, store, {relative("IMG_0001.HEIC"): facts})
    assert outcome.written == 1 and not outcome.left_alone
    path = sidecar_path(archive, relative("IMG_0001.HEIC"))
    assert path.name == "IMG_0001.HEIC.xmp"
    root = ElementTree.parse(path).getroot()
    items = [item.text for item in root.iter(f"{{{NAMESPACES['rdf']}}}li")]
    assert items == [
        HOSTILE,
        "Trip",
        "Hidden",
        "Recently Deleted",
        f"Albums|{HOSTILE}",
        "Albums|Trip",
        "Photos|Hidden",
        "Photos|Recently Deleted",
        "UUID-1",
    ]
    assert root.find(f".//{{{NAMESPACES['xmp']}}}Rating") is not None
    date = root.find(f".//{{{NAMESPACES['exif']}}}DateTimeOriginal")
    assert date is not None and date.text == "2023-07-14T18:32:05+02:00"
    assert (archive / relative("IMG_0001.HEIC")).read_bytes() == b"photo bytes IMG_0001.HEIC"


@pytest.mark.skipif(
    shutil.which("exiftool") is None, reason="exiftool (Debian libimage-exiftool-perl)"
)
def test_exiftool_reads_what_immich_digikam_and_darktable_look_for(
    tmp_path: Path, store: StateStore
) -> None:
    """exiftool (what Immich reads sidecars with) sees Rating, Subject, HierarchicalSubject and
    DateTimeOriginal in our sidecar."""
    archive = archive_with(tmp_path / "archive", "IMG_0001.HEIC")
    facts = SidecarFacts(("UUID-1",), ("Trip",), True, False, False, DATE)
    apply(archive, store, {relative("IMG_0001.HEIC"): facts})
    output = subprocess.run(
        ["exiftool", "-json", "-XMP:all", str(sidecar_path(archive, relative("IMG_0001.HEIC")))],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    [tags] = json.loads(output)
    assert tags["Rating"] == 5
    assert tags["Subject"] == "Trip"
    assert tags["HierarchicalSubject"] == "Albums|Trip"
    assert tags["DateTimeOriginal"] == "2023:07:14 18:32:05+02:00"


def test_a_changed_library_rewrites_our_sidecar_and_keeps_every_version(
    tmp_path: Path, store: StateStore
) -> None:
    """While the sidecar is the one rollkeeper wrote, a new album rewrites it; the same facts
    again write nothing; every version's facts stay in the state."""
    archive = archive_with(tmp_path / "archive", "IMG_0001.HEIC")
    path = relative("IMG_0001.HEIC")
    apply(archive, store, {path: SidecarFacts(("U",), ("Trip",))})
    second = apply(archive, store, {path: SidecarFacts(("U",), ("Family", "Trip"))})
    again = apply(archive, store, {path: SidecarFacts(("U",), ("Family", "Trip"))})
    assert second.written == 1 and again.written == 0 and again.unchanged == 1
    assert store.sidecar_repository.sidecar_versions(path) == 2
    latest = store.sidecar_repository.latest_sidecar(path)
    assert latest is not None and latest.facts["albums"] == ["Family", "Trip"]
    assert b"Family" in sidecar_path(archive, path).read_bytes()


def test_a_sidecar_another_tool_edited_is_left_alone_and_reported(
    tmp_path: Path, store: StateStore
) -> None:
    """After digiKam edits the sidecar, rollkeeper never writes over it, and says so; a sidecar
    rollkeeper never wrote is left alone too."""
    archive = archive_with(tmp_path / "archive", "IMG_0001.HEIC", "IMG_0002.HEIC")
    first, second = relative("IMG_0001.HEIC"), relative("IMG_0002.HEIC")
    apply(archive, store, {first: SidecarFacts(("U1",), ("Trip",))})
    edited = sidecar_bytes(SidecarFacts(("U1",), ("Trip", "Tagged in digiKam")))
    sidecar_path(archive, first).write_bytes(edited)
    theirs = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"
    sidecar_path(archive, second).write_bytes(theirs)
    outcome = apply(
        archive,
        store,
        {first: SidecarFacts(("U1",), ("Other",)), second: SidecarFacts(("U2",), ("Other",))},
    )
    assert outcome.written == 0
    assert sorted(outcome.left_alone) == [(first, EDITED_ELSEWHERE), (second, NOT_OURS)]
    assert sidecar_path(archive, first).read_bytes() == edited
    assert sidecar_path(archive, second).read_bytes() == theirs


def test_a_read_that_would_empty_many_albums_at_once_is_refused_whole(
    tmp_path: Path, store: StateStore
) -> None:
    """With 40 sidecars carrying an album, a set of facts taking it from all of them writes
    nothing at all; a set taking it from one is applied."""
    names = [f"IMG_{number:04d}.HEIC" for number in range(40)]
    archive = archive_with(tmp_path / "archive", *names)
    apply(archive, store, {relative(name): SidecarFacts((name,), ("Trip",)) for name in names})
    before = {name: sidecar_path(archive, relative(name)).read_bytes() for name in names}
    emptied = apply(archive, store, {relative(name): SidecarFacts((name,), ()) for name in names})
    assert emptied.refused and emptied.check.dropping == 40 and emptied.written == 0
    assert all(sidecar_path(archive, relative(n)).read_bytes() == before[n] for n in names)
    one = {relative(name): SidecarFacts((name,), ("Trip",)) for name in names}
    one[relative(names[0])] = SidecarFacts((names[0],), ())
    applied = apply(archive, store, one)
    assert not applied.refused and applied.written == 1


def test_a_crash_between_record_and_rename_leaves_a_sidecar_rollkeeper_still_owns(
    tmp_path: Path, store: StateStore
) -> None:
    """Prepared and recorded but never renamed (the process died): the file on disk is still
    a version rollkeeper wrote, so the next application rewrites it rather than calling it
    another tool's."""
    archive = archive_with(tmp_path / "archive", "IMG_0001.HEIC")
    path = relative("IMG_0001.HEIC")
    apply(archive, store, {path: SidecarFacts(("U",), ("Trip",))})
    versions = store.sidecar_repository
    keeper = SidecarKeeper(archive, 5)
    cut = keeper.prepare({path: SidecarFacts(("U",), ("Trip", "New"))}, versions.known_sidecars())
    versions.add_sidecar_versions([(w.relative_path, w.content_hash, w.facts) for w in cut.writes])
    keeper.discard(cut)  # what is left of a crash before the rename: nothing on disk changed
    again = apply(archive, store, {path: SidecarFacts(("U",), ("Trip", "New"))})
    assert again.written == 1 and again.left_alone == []
    assert b"New" in sidecar_path(archive, path).read_bytes()
