"""The AFC replies about names rather than bytes: READ_DIR, GET_FILE_INFO and GET_DEVINFO.

Folders list ``.`` and ``..`` first, then the host names sorted, then the hostile entries a
fault adds to the folder. File info is the host's ``stat`` in afcd's spelling (``st_ifmt``
names, nanosecond times), changed by the stat faults; hostile entries report what their
:class:`~rollkeeper.simulator.phone.HostileEntry` says. Device info reports the media root's
file system as the phone's.
"""

from __future__ import annotations

import os
import stat as stat_module

from rollkeeper.simulator.afc_errors import AfcRequestError, status_for_os_error
from rollkeeper.simulator.afc_faults import (
    StatValues,
    check_permission,
    faulted_stat,
    without_missing_keys,
)
from rollkeeper.simulator.afc_paths import HostileTarget, MediaPaths, canonical_or_none
from rollkeeper.simulator.afc_protocol import Status, cstring_list
from rollkeeper.simulator.phone import PhoneState

_IFMT_NAMES = {
    stat_module.S_IFREG: "S_IFREG",
    stat_module.S_IFDIR: "S_IFDIR",
    stat_module.S_IFLNK: "S_IFLNK",
    stat_module.S_IFIFO: "S_IFIFO",
    stat_module.S_IFCHR: "S_IFCHR",
    stat_module.S_IFBLK: "S_IFBLK",
    stat_module.S_IFSOCK: "S_IFSOCK",
}


def read_dir(paths: MediaPaths, requested: str) -> bytes:
    """READ_DIR: the folder's names as a NUL-separated list."""
    faults = paths.phone.faults
    target = paths.target(requested)
    if target.fault_key in faults.not_found:
        raise AfcRequestError(Status.OBJECT_NOT_FOUND)
    check_permission(faults, target.fault_key)
    hostile_names = [
        entry.name
        for folder, entries in faults.hostile_entries.items()
        if folder == target.fault_key or canonical_or_none(folder) == target.fault_key
        for entry in entries
    ]
    names: list[str] = []
    if isinstance(target, HostileTarget):
        if target.entry.kind != "S_IFDIR":
            raise AfcRequestError(Status.READ_ERROR)
    else:
        try:
            names = sorted(os.listdir(target.host_path))
        except NotADirectoryError as error:
            raise AfcRequestError(Status.READ_ERROR) from error
        except FileNotFoundError as error:
            if not hostile_names:
                raise AfcRequestError(Status.OBJECT_NOT_FOUND) from error
        except OSError as error:
            raise AfcRequestError(status_for_os_error(error)) from error
    return cstring_list([".", "..", *names, *hostile_names])


def hostile_count(paths: MediaPaths, folder_key: str) -> int:
    """How many hostile entries a fault adds to the listing of a folder."""
    return sum(
        len(entries)
        for folder, entries in paths.phone.faults.hostile_entries.items()
        if folder == folder_key or canonical_or_none(folder) == folder_key
    )


def _apfs_folder_counts(host_path: str, extra_entries: int) -> tuple[int, int]:
    """A folder's ``st_size`` and ``st_nlink`` as APFS reports them: ``st_nlink`` is the
    number of entries plus two, ``st_size`` 32 bytes per entry plus 64 (a Linux host's own
    figures count only subfolders and blocks, which stay put when a photo is added). With the
    host's ``st_mtime`` (moved on every entry added, removed or renamed) a folder's stat
    changes whenever its listing does, as a phone's does."""
    try:
        entries = len(os.listdir(host_path)) + extra_entries
    except OSError:
        entries = extra_entries
    return 32 * (entries + 2), entries + 2


def file_info(paths: MediaPaths, requested: str) -> list[tuple[str, str]]:
    """GET_FILE_INFO: the object's stat as key/value pairs, faults applied."""
    target = paths.target(requested)
    faults = paths.phone.faults
    key = target.fault_key
    if key in faults.not_found:
        raise AfcRequestError(Status.OBJECT_NOT_FOUND)
    check_permission(faults, key)
    link_target: str | None = None
    if isinstance(target, HostileTarget):
        entry = target.entry
        ifmt = entry.kind
        size = len(entry.content) if entry.kind == "S_IFREG" else 0
        if entry.kind == "S_IFLNK":
            link_target = entry.link_target
            size = len(entry.link_target.encode("utf-8", "surrogateescape"))
        blocks = (size + 511) // 512
        nlink = 2 if entry.kind == "S_IFDIR" else 1
        mtime_ns = birthtime_ns = 0
    else:
        try:
            info = os.stat(target.host_path)
        except OSError as error:
            raise AfcRequestError(status_for_os_error(error)) from error
        ifmt = _IFMT_NAMES.get(stat_module.S_IFMT(info.st_mode), "S_IFREG")
        size = info.st_size
        blocks = info.st_blocks
        nlink = info.st_nlink
        mtime_ns = birthtime_ns = info.st_mtime_ns
        if ifmt == "S_IFDIR":
            size, nlink = _apfs_folder_counts(target.host_path, hostile_count(paths, key))
    shown = faulted_stat(faults, key, StatValues(size, blocks, mtime_ns, birthtime_ns))
    pairs = [
        ("st_size", str(shown.size)),
        ("st_blocks", str(shown.blocks)),
        ("st_nlink", str(nlink)),
        ("st_ifmt", ifmt),
        ("st_mtime", str(shown.mtime_ns)),
        ("st_birthtime", str(shown.birthtime_ns)),
    ]
    if link_target is not None:
        pairs.append(("LinkTarget", link_target))
    return without_missing_keys(faults, key, pairs)


def device_info(phone: PhoneState, root: str) -> list[tuple[str, str]]:
    """GET_DEVINFO: the model and the media root's file system sizes."""
    try:
        volume = os.statvfs(root)
        total = volume.f_blocks * volume.f_frsize
        free = volume.f_bavail * volume.f_frsize
        block = volume.f_frsize
    except OSError:
        total, free, block = 0, 0, 4096
    return [
        ("Model", phone.identity.product_type),
        ("FSTotalBytes", str(total)),
        ("FSFreeBytes", str(free)),
        ("FSBlockSize", str(block)),
    ]
