"""Album folders (``[library] album_folders = true``): ``Albums/<title>/`` as links to the
archived files, rebuilt from the library. A view, never the only copy.

Hard links where the file system has them (the view costs no space and survives a move of the
archive); symbolic links (relative, inside the archive) where it has not; nothing, with one
clear message, where it has neither (exFAT has neither). Only links rollkeeper made (recorded in
the state, and still the same file on disk) are ever removed when an album changes: anything
else found under ``Albums/`` is left alone. :meth:`AlbumFolders.rebuild` touches only files (a
worker thread may run it); the caller records the links it says were made and forgotten. A
title from the phone becomes one safe folder name (no separators, no leading dot, at most 255
bytes).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import structlog

from rollkeeper.archive.locations import ALBUMS_FOLDER_NAME
from rollkeeper.domain.files import stem_of
from rollkeeper.domain.library import printable_title
from rollkeeper.domain.names import MAX_NAME_BYTES

log = structlog.get_logger("rollkeeper.library")

HARD = "hard"
SYMBOLIC = "symbolic"
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV})


@dataclass(slots=True)
class AlbumOutcome:
    """What a rebuild did."""

    linked: int = 0
    removed: int = 0
    kept: int = 0
    #: Why no link could be made at all (a file system without links), else "".
    problem: str = ""
    left_alone: list[str] = field(default_factory=list)
    #: For the state: ``(link, target, kind)`` of each link made, and the links forgotten.
    recorded: list[tuple[str, str, str]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)


def folder_name(title: str) -> str:
    """A phone's album title as one folder name: printable, no ``/`` or ``\\``, no leading
    dot, at most 255 UTF-8 bytes; an empty title is ``Untitled``."""
    name = printable_title(title).replace("/", "_").replace("\\", "_").lstrip(".").strip()
    encoded = name.encode("utf-8")[:MAX_NAME_BYTES]
    name = encoded.decode("utf-8", errors="ignore").strip()
    return name or "Untitled"


def planned_links(albums_by_file: Mapping[str, set[str]]) -> dict[str, str]:
    """``Albums/<title>/<name>`` -> archived file, for every file of every album; two files of
    one album with one name get ``~2``, ``~3``... by their archive path."""
    by_album: dict[str, list[str]] = {}
    for path in sorted(albums_by_file):
        for title in albums_by_file[path]:
            by_album.setdefault(folder_name(title), []).append(path)
    links: dict[str, str] = {}
    for album, paths in sorted(by_album.items()):
        used: set[str] = set()
        for path in sorted(set(paths)):
            name = PurePosixPath(path).name
            candidate, number = name, 1
            while candidate in used:
                number += 1
                extension = name[len(stem_of(name)) :]
                candidate = f"{stem_of(name)}~{number}{extension}"
            used.add(candidate)
            links[f"{ALBUMS_FOLDER_NAME}/{album}/{candidate}"] = path
    return links


def _is_ours(link: Path, target: Path, kind: str) -> bool:
    """Whether ``link`` is still the link rollkeeper made to ``target``."""
    try:
        if kind == SYMBOLIC:
            return (
                link.is_symlink()
                and (link.parent / os.readlink(link)).resolve() == target.resolve()
            )
        if link.is_symlink():
            return False
        return os.path.samestat(link.stat(), target.stat())
    except OSError:
        return False


class AlbumFolders:
    """Rebuilds ``Albums/`` in one archive."""

    def __init__(self, archive_root: Path) -> None:
        self._root = archive_root

    def rebuild(
        self, albums_by_file: Mapping[str, set[str]], made: Mapping[str, tuple[str, str]]
    ) -> AlbumOutcome:
        """Make the links the albums need and remove the ones they no longer need; ``made`` is
        every link rollkeeper made before (``link -> (target, kind)``)."""
        outcome = AlbumOutcome()
        wanted = planned_links(albums_by_file)
        made = dict(made)
        for link_path, (target_path, kind) in sorted(made.items()):
            if wanted.get(link_path) == target_path and _is_ours(
                self._root / link_path, self._root / target_path, kind
            ):
                outcome.kept += 1
                continue
            link = self._root / link_path
            if _is_ours(link, self._root / target_path, kind):
                link.unlink()
                outcome.removed += 1
            outcome.forgotten.append(link_path)
            made.pop(link_path)
        for link_path, target_path in sorted(wanted.items()):
            if link_path in made:
                continue
            if outcome.problem:
                break
            self._make(link_path, target_path, outcome)
        self._remove_empty_folders()
        if outcome.problem:
            log.warning("album_folders_unavailable", reason=outcome.problem)
        return outcome

    def _make(self, link_path: str, target_path: str, outcome: AlbumOutcome) -> None:
        link = self._root / link_path
        target = self._root / target_path
        if not target.is_file():
            return
        if os.path.lexists(link):
            outcome.left_alone.append(link_path)
            return
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(target, link)
            kind = HARD
        except OSError as error:
            if error.errno not in _NO_LINKS:
                raise
            try:
                os.symlink(os.path.relpath(target, link.parent), link)
                kind = SYMBOLIC
            except OSError as symlink_error:
                outcome.problem = (
                    "the archive's file system has neither hard nor symbolic links "
                    f"({symlink_error.strerror or symlink_error}): no album folders"
                )
                return
        outcome.recorded.append((link_path, target_path, kind))
        outcome.linked += 1

    def _remove_empty_folders(self) -> None:
        albums = self._root / ALBUMS_FOLDER_NAME
        if not albums.is_dir():
            return
        for folder in sorted(albums.iterdir()):
            if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
                folder.rmdir()
