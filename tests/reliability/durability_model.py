"""What a disk keeps after a power cut: the bytes and names as of their last fsync.

The power-cut filesystem (:mod:`tests.reliability.power_cut_fs`) passes every operation through
to a backing folder, its *live* state, and tells this model before each change. The model keeps
what a power cut would leave, its *durable* state, as the difference from the live one:

* **File contents.** A file's durable content is its content at its last ``fsync``/
  ``fdatasync`` (the two are one here). Before a write or truncate changes bytes of that content
  for the first time since that sync, the model saves the old bytes, block by block; bytes
  written past the durable size need no saving (they are cut off). A file created since the
  mount is durably empty until it is synced.
* **Folder entries.** A folder's durable entries are its entries (name -> inode) at its last
  folder ``fsync``. Before the first change of a folder since then (create, link, unlink,
  rename in or out, mkdir, rmdir) the model lists it. So a new name, a rename or a link is
  durable only once its folder is synced, and a removed name comes back until then; a rename
  between two folders is durable per folder (as POSIX promises; a journalling filesystem
  would commit both sides at once).
* **Writeback.** A real system also makes things durable on its own, at any time (the
  kernel's writeback of dirty pages, a journal's periodic commit): the test can ask for that
  for one folder's subtree (:meth:`DurabilityModel.write_back`), e.g. to make the state
  database's records durable while the archive's newest files are not.
* **Nothing is ever really deleted while mounted.** Every file inode has one extra hard link
  in ``links/<inode>`` (hidden from ``st_nlink``), and a removed folder is moved to
  ``links/dir-<inode>``: a name the durable state still holds can be given back after a cut.

:meth:`DurabilityModel.rebuild`, run after a cut with the filesystem unmounted, puts the saved
bytes back, truncates every file to its durable size and builds the durable tree of names from
the root down (hard links to the same inodes), then swaps it in for the live tree.

Not modelled (docs/reliability.md says more): metadata other than size and names (modes, times,
owners are durable at once), ``sync``/``syncfs`` (they make nothing durable here), torn writes
inside a block and data that comes back as zeros or garbage, and folder renames (refused with
``EXDEV``, which programs treat as "copy instead"; rollkeeper never renames a folder).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

#: Granularity of the saved old bytes (a page: SQLite writes whole pages).
BLOCK_BYTES = 4096
#: Prefix of a removed folder kept in ``links/``.
REMOVED_FOLDER_PREFIX = "dir-"


@dataclass
class FileUndo:
    """How to bring one file inode back to its durable content."""

    durable_size: int
    #: Block number -> the durable bytes of that block, for blocks changed since the last sync.
    saved_blocks: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """One name in a folder: the inode it names and its type (``stat.S_IFMT`` bits)."""

    inode: int
    kind: int

    @property
    def is_folder(self) -> bool:
        return self.kind == stat.S_IFDIR


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild dropped: files whose content went back, folders whose entries did."""

    files_reverted: int
    folders_reverted: int
    bytes_dropped: int

    def __str__(self) -> str:
        return (
            f"files={self.files_reverted} folders={self.folders_reverted} "
            f"bytes={self.bytes_dropped}"
        )


def list_entries(folder: Path) -> dict[str, Entry]:
    """The live entries of ``folder`` (``lstat`` of each: readdir's inode may not be st_ino)."""
    found: dict[str, Entry] = {}
    with os.scandir(folder) as listing:
        for item in listing:
            status = item.stat(follow_symlinks=False)
            found[item.name] = Entry(status.st_ino, stat.S_IFMT(status.st_mode))
    return found


class DurabilityModel:
    """The durable state of the tree at ``store/tree`` (see the module docstring)."""

    def __init__(self, store: Path) -> None:
        self.tree = store / "tree"
        self.links = store / "links"
        self.tree.mkdir(parents=True, exist_ok=True)
        self.links.mkdir(exist_ok=True)
        self._files: dict[int, FileUndo] = {}
        self._folders: dict[int, dict[str, Entry]] = {}

    # -- at mount -----------------------------------------------------------------------------

    def adopt(self) -> None:
        """Make the tree as it is the durable state: link every file, drop what nothing names.

        Run before mounting: everything in the backing folder is durable at that moment (it is
        what the last rebuild, or a clean unmount, left).
        """
        for folder, _, names in os.walk(self.tree):
            for name in names:
                path = Path(folder) / name
                inode = path.lstat().st_ino
                link = self.links / str(inode)
                if not os.path.lexists(link):
                    os.link(path, link, follow_symlinks=False)
        for item in list(self.links.iterdir()):
            if item.name.startswith(REMOVED_FOLDER_PREFIX):
                shutil.rmtree(item)
            elif item.lstat().st_nlink <= 1:
                item.unlink()

    # -- before and after each change ---------------------------------------------------------

    def before_folder_change(self, folder: Path) -> None:
        """Keep ``folder``'s durable entries before its first change since its last sync."""
        inode = folder.lstat().st_ino
        if inode not in self._folders:
            self._folders[inode] = list_entries(folder)

    def folder_created(self, folder: Path) -> None:
        """A new folder is durably empty (its name in its parent is the parent's business)."""
        self._folders[folder.lstat().st_ino] = {}

    def file_created(self, path: Path, descriptor: int | None = None) -> None:
        """A new file (or symlink): keep its inode reachable; durably empty until synced."""
        status = os.fstat(descriptor) if descriptor is not None else path.lstat()
        os.link(path, self.links / str(status.st_ino), follow_symlinks=False)
        if stat.S_ISREG(status.st_mode):
            self._files[status.st_ino] = FileUndo(durable_size=0)

    def remove_folder(self, folder: Path) -> None:
        """rmdir, kept: move the (empty) folder aside so a durable name can get it back."""
        if any(folder.iterdir()):
            raise OSError(39, os.strerror(39), str(folder))  # ENOTEMPTY
        self.before_folder_change(folder.parent)
        inode = folder.lstat().st_ino
        folder.rename(self.links / f"{REMOVED_FOLDER_PREFIX}{inode}")

    def before_write(self, descriptor: int, offset: int, length: int) -> None:
        """Save the durable bytes that a write of ``length`` bytes at ``offset`` overwrites."""
        undo = self._undo(descriptor)
        end = min(offset + length, undo.durable_size)
        if end > offset:
            self._save(undo, descriptor, offset // BLOCK_BYTES, (end - 1) // BLOCK_BYTES)

    def before_truncate(self, descriptor: int, length: int) -> None:
        """Save the durable bytes that a truncate to ``length`` cuts off."""
        undo = self._undo(descriptor)
        if length < undo.durable_size:
            last = (undo.durable_size - 1) // BLOCK_BYTES
            self._save(undo, descriptor, length // BLOCK_BYTES, last)

    def file_synced(self, descriptor: int) -> None:
        """fsync/fdatasync: the file's content as it is now is durable."""
        self._files.pop(os.fstat(descriptor).st_ino, None)

    def folder_synced(self, folder: Path) -> None:
        """Folder fsync: its entries as they are now are durable."""
        self._folders.pop(folder.lstat().st_ino, None)

    def write_back(self, folder: Path) -> int:
        """The system made ``folder`` durable on its own: the content of every file under it
        and the entries of ``folder`` and of every folder under it, as the kernel's writeback
        and a journal's periodic commit may at any time. ``folder``'s own name in its parent
        is not included. Returns how many files and folders had something to write back."""
        written = 0
        for parent, _, names in os.walk(folder):
            if self._folders.pop(Path(parent).lstat().st_ino, None) is not None:
                written += 1
            for name in names:
                if self._files.pop((Path(parent) / name).lstat().st_ino, None) is not None:
                    written += 1
        return written

    def pending(self) -> tuple[int, int]:
        """(files, folders) that a cut now would take back."""
        return len(self._files), len(self._folders)

    def _undo(self, descriptor: int) -> FileUndo:
        status = os.fstat(descriptor)
        undo = self._files.get(status.st_ino)
        if undo is None:
            undo = self._files[status.st_ino] = FileUndo(durable_size=status.st_size)
        return undo

    def _save(self, undo: FileUndo, descriptor: int, first: int, last: int) -> None:
        missing = [block for block in range(first, last + 1) if block not in undo.saved_blocks]
        if not missing:
            return
        # The handle may be write-only: read through the inode's own link.
        inode = os.fstat(descriptor).st_ino
        reader = os.open(self.links / str(inode), os.O_RDONLY)
        try:
            for block in missing:
                start = block * BLOCK_BYTES
                size = min(BLOCK_BYTES, undo.durable_size - start)
                undo.saved_blocks[block] = os.pread(reader, size, start)
        finally:
            os.close(reader)

    # -- after a cut --------------------------------------------------------------------------

    def rebuild(self) -> RebuildReport:
        """Replace the live tree by the durable one (the filesystem must be unmounted)."""
        dropped = 0
        for inode, undo in self._files.items():
            path = self.links / str(inode)
            descriptor = os.open(path, os.O_WRONLY)
            try:
                dropped += max(0, os.fstat(descriptor).st_size - undo.durable_size)
                for block, data in undo.saved_blocks.items():
                    os.pwrite(descriptor, data, block * BLOCK_BYTES)
                os.ftruncate(descriptor, undo.durable_size)
            finally:
                os.close(descriptor)
        folders_at = self._folder_locations()
        rebuilt = self.tree.with_name("tree.rebuilt")
        lost = self.tree.with_name("tree.lost")
        for leftover in (rebuilt, lost):
            shutil.rmtree(leftover, ignore_errors=True)
        self._build(self.tree.lstat().st_ino, rebuilt, folders_at)
        self.tree.rename(lost)
        rebuilt.rename(self.tree)
        shutil.rmtree(lost)
        report = RebuildReport(len(self._files), len(self._folders), dropped)
        self._files.clear()
        self._folders.clear()
        self.adopt()
        return report

    def _folder_locations(self) -> dict[int, Path]:
        """Inode -> path of every live folder, the removed ones in ``links/`` included."""
        found: dict[int, Path] = {}
        roots = [self.tree] + [
            item for item in self.links.iterdir() if item.name.startswith(REMOVED_FOLDER_PREFIX)
        ]
        for root in roots:
            for folder, _, _ in os.walk(root):
                found[Path(folder).lstat().st_ino] = Path(folder)
        return found

    def _build(self, inode: int, target: Path, folders_at: dict[int, Path]) -> None:
        source = folders_at[inode]
        entries = self._folders.get(inode)
        if entries is None:
            entries = list_entries(source)
        target.mkdir()
        with contextlib.suppress(OSError):
            os.chmod(target, stat.S_IMODE(source.lstat().st_mode))
        for name, entry in entries.items():
            if entry.is_folder:
                self._build(entry.inode, target / name, folders_at)
            else:
                os.link(self.links / str(entry.inode), target / name, follow_symlinks=False)
