"""Where an ``archive_files`` row lives on disk, and which files of the archive folder count.

``archive_files.relative_path`` is relative to the archive root for everything inside it (files
the importer stored, and adopted files inside the archive). An adopted file *outside* the archive
folder is recorded by its absolute path instead, because there is no root to be relative to.
The two never collide: a relative path never starts with ``/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

#: The importer's working folder inside the archive (partial files, on the same file system as
#: the final names so that placing a file is a rename); never archive content. The one definition:
#: the importer writes there and every walk of the archive skips it.
WORKING_FOLDER_NAME = ".rollkeeper"
#: The album views at the archive's root (``[library] album_folders``): links to archived
#: files, never content of their own; every walk of the archive skips them too.
ALBUMS_FOLDER_NAME = "Albums"
#: The suffix of the XMP sidecar rollkeeper keeps beside an archived file (``IMG_1.HEIC.xmp``):
#: rollkeeper's metadata, not archived content.
SIDECAR_SUFFIX = ".xmp"

#: Files that operating systems and file managers drop into any folder they show. They are not
#: photos, and reporting them as "untracked" on every verify would bury real findings.
CLUTTER_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".directory", ".localized"})

#: Folders that macOS, Windows and Synology create on volumes; their content is not the user's.
CLUTTER_FOLDERS = frozenset(
    {".Spotlight-V100", ".Trashes", ".fseventsd", ".TemporaryItems", "$RECYCLE.BIN", "@eaDir"}
)


def entry_location(archive_root: Path, relative_path: str) -> Path:
    """The file on disk for an ``archive_files.relative_path`` (absolute for outside adoptions)."""
    recorded = Path(relative_path)
    if recorded.is_absolute():
        return recorded
    return archive_root / recorded


def recorded_path(archive_root: Path, file_path: Path) -> str:
    """The ``relative_path`` to record for a file: POSIX-relative inside the archive, else absolute.

    Both paths are resolved first, so a symlinked archive root or a path given with ``..`` still
    lands on the same key as the importer's own rows.
    """
    resolved_root = archive_root.resolve()
    resolved_file = file_path.resolve()
    if resolved_file.is_relative_to(resolved_root):
        return PurePosixPath(*resolved_file.relative_to(resolved_root).parts).as_posix()
    return str(resolved_file)


def is_clutter(name: str) -> bool:
    """True for OS clutter files (including macOS ``._name`` AppleDouble companions)."""
    return name in CLUTTER_NAMES or name.startswith("._")


def walk_files(folder: Path, *, skip_working_folder_of: Path | None = None) -> Iterator[Path]:
    """Every regular file under ``folder``, in a stable order, skipping clutter.

    Symlinks are neither followed nor reported: following them could leave the folder (or loop),
    and a link is not content the archive holds. ``skip_working_folder_of`` names an archive root
    whose ``.rollkeeper`` working folder is skipped.
    """
    for path in walk_file_paths(str(folder), skip_working_folder_of=skip_working_folder_of):
        yield Path(path)


def walk_file_paths(folder: str, *, skip_working_folder_of: Path | None = None) -> Iterator[str]:
    """:func:`walk_files` as plain strings (``folder`` + ``/`` + the rest).

    Uses ``os.scandir``'s cached file types and no ``Path`` objects, so a walk of 400,000 files
    costs one directory read per folder and no stat per file. With ``skip_working_folder_of``
    the archive's ``Albums/`` views are skipped as well.
    """
    working = (
        None
        if skip_working_folder_of is None
        else str((skip_working_folder_of / WORKING_FOLDER_NAME).resolve())
    )
    albums = (
        None
        if skip_working_folder_of is None
        else str((skip_working_folder_of / ALBUMS_FOLDER_NAME).resolve())
    )
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name in CLUTTER_FOLDERS:
                    continue
                if (
                    working is not None
                    and entry.name == WORKING_FOLDER_NAME
                    and os.path.realpath(entry.path) == working
                ):
                    continue
                if (
                    albums is not None
                    and entry.name == ALBUMS_FOLDER_NAME
                    and os.path.realpath(entry.path) == albums
                ):
                    continue
                subfolders.append(entry.path)
            elif entry.is_file(follow_symlinks=False) and not is_clutter(entry.name):
                yield entry.path
        # Depth first, in name order: reversed because the list is used as a stack.
        pending.extend(reversed(subfolders))
