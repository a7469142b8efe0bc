"""What the simulated phone puts into a full backup, and the metadata files that describe it.

The content is the media folder's camera roll under ``CameraRollDomain`` (``Media/DCIM/...``,
left out when iCloud Photos is on, as real phones do) plus the phone's
:attr:`BackupBehaviour.extra_files` (system and app files). Each file is stored by the host at
``<udid>/<fileID[:2]>/<fileID>`` with ``fileID = sha1(domain + "-" + relativePath)``, and listed
in ``Manifest.db`` (table ``Files``: fileID, domain, relativePath, flags, file — an
NSKeyedArchiver ``MBFile``), the layout pymobiledevice3, pyiosbackup and idevicebackup2 read.

Encryption is a stand-in: with ``will_encrypt`` the phone sends each file and Manifest.db
AES-CBC encrypted under a key it never gives out, and Manifest.plist says ``IsEncrypted``. That
is what a host without the password sees of a real encrypted backup (opaque bytes); the
simulator's keybag is not a real one, so no tool can decrypt it.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import plistlib
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from rollkeeper.simulator.phone import PhoneState

CAMERA_ROLL_DOMAIN = "CameraRollDomain"
#: A regular file's mode in MBFile (S_IFREG | 0644).
REGULAR_FILE_MODE = 0o100644
MBFILE_FLAG_FILE = 1


@dataclass(frozen=True)
class BackupItem:
    """One file of the backup: where it comes from and how the host stores it."""

    domain: str
    relative_path: str
    size: int
    mtime: int
    #: The host file that holds the content (camera roll), or None for ``inline``.
    source: Path | None = None
    inline: bytes = b""

    @property
    def file_id(self) -> str:
        """The file's name in the backup: sha1 of ``domain-relativePath``."""
        return file_id(self.domain, self.relative_path)

    @property
    def stored_name(self) -> str:
        """Where the host stores it, relative to ``<udid>/``."""
        return f"{self.file_id[:2]}/{self.file_id}"

    def chunks(self, size: int) -> Iterator[bytes]:
        """The content in pieces of at most ``size`` bytes."""
        if self.source is None:
            for start in range(0, len(self.inline), size):
                yield self.inline[start : start + size]
            return
        with self.source.open("rb") as stream:
            while piece := stream.read(size):
                yield piece


def file_id(domain: str, relative_path: str) -> str:
    """``sha1(domain + "-" + relativePath)``, the name of a file in a backup."""
    return hashlib.sha1(f"{domain}-{relative_path}".encode()).hexdigest()


def backup_items(phone: PhoneState) -> list[BackupItem]:
    """Every file the phone would back up now, in a stable order."""
    items: list[BackupItem] = []
    if not phone.backup.icloud_photos:
        dcim = phone.media_root / "DCIM"
        for folder, subfolders, names in os.walk(dcim):
            subfolders.sort()
            for name in sorted(names):
                path = Path(folder) / name
                try:
                    info = path.lstat()
                except OSError:
                    continue
                if not path.is_file() or path.is_symlink():
                    continue
                relative = "Media/" + path.relative_to(phone.media_root).as_posix()
                items.append(
                    BackupItem(
                        CAMERA_ROLL_DOMAIN, relative, info.st_size, int(info.st_mtime), source=path
                    )
                )
    stamp = 1_700_000_000
    for (domain, relative), content in sorted(phone.backup.extra_files.items()):
        items.append(BackupItem(domain, relative, len(content), stamp, inline=content))
    return items


def mbfile_archive(item: BackupItem, inode: int) -> bytes:
    """The ``file`` column of Manifest.db: an NSKeyedArchiver ``MBFile`` (binary plist)."""
    uid = plistlib.UID
    archive = {
        "$version": 100000,
        "$archiver": "NSKeyedArchiver",
        "$top": {"root": uid(1)},
        "$objects": [
            "$null",
            {
                "$class": uid(3),
                "RelativePath": uid(2),
                "LastModified": item.mtime,
                "LastStatusChange": item.mtime,
                "Birth": item.mtime,
                "Size": item.size,
                "Mode": REGULAR_FILE_MODE,
                "UserID": 501,
                "GroupID": 501,
                "InodeNumber": inode,
                "ProtectionClass": 3,
                "Flags": 0,
            },
            item.relative_path,
            {"$classname": "MBFile", "$classes": ["MBFile", "NSObject"]},
        ],
    }
    return plistlib.dumps(archive, fmt=plistlib.FMT_BINARY)


def manifest_db(items: list[BackupItem]) -> bytes:
    """A Manifest.db listing ``items`` (SQLite, built in a temporary file)."""
    with tempfile.TemporaryDirectory(prefix="sim-manifest-") as folder:
        path = Path(folder) / "Manifest.db"
        connection = sqlite3.connect(path)
        try:
            connection.executescript(
                "CREATE TABLE Files (fileID TEXT PRIMARY KEY, domain TEXT, relativePath TEXT,"
                " flags INTEGER, file BLOB);"
                "CREATE INDEX FilesDomainIdx ON Files(domain);"
                "CREATE INDEX FilesRelativePathIdx ON Files(relativePath);"
                "CREATE TABLE Properties (key TEXT PRIMARY KEY, value BLOB);"
            )
            connection.executemany(
                "INSERT INTO Files VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        item.file_id,
                        item.domain,
                        item.relative_path,
                        MBFILE_FLAG_FILE,
                        mbfile_archive(item, index + 1),
                    )
                    for index, item in enumerate(items)
                ],
            )
            connection.commit()
        finally:
            connection.close()
        return path.read_bytes()


def previous_sizes(database: bytes) -> dict[str, tuple[int, int]] | None:
    """fileID -> (size, mtime) from a host's Manifest.db (None if it is not one we can read)."""
    with tempfile.TemporaryDirectory(prefix="sim-previous-") as folder:
        path = Path(folder) / "Manifest.db"
        path.write_bytes(database)
        try:
            connection = sqlite3.connect(path)
            try:
                rows = connection.execute("SELECT fileID, file FROM Files").fetchall()
            finally:
                connection.close()
        except sqlite3.DatabaseError:
            return None
    known: dict[str, tuple[int, int]] = {}
    for identifier, blob in rows:
        try:
            record = plistlib.loads(blob)["$objects"][1]
            known[str(identifier)] = (int(record["Size"]), int(record["LastModified"]))
        except (plistlib.InvalidFileException, KeyError, IndexError, TypeError, ValueError):
            continue
    return known


def manifest_plist(phone: PhoneState, *, encrypted: bool, key: bytes) -> bytes:
    """Manifest.plist: the phone's identity, the keybag and whether the backup is encrypted."""
    identity = phone.identity
    content: dict[str, object] = {
        "Version": "10.0",
        "Date": datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0),
        "SystemDomainsVersion": "24.0",
        "IsEncrypted": encrypted,
        "WasPasscodeSet": phone.backup.passcode_prompt,
        "Applications": {},
        "BackupKeyBag": hashlib.sha256(b"keybag" + key).digest() * 4,
        "Lockdown": {
            "ProductVersion": identity.product_version,
            "ProductType": identity.product_type,
            "BuildVersion": identity.build_version,
            "UniqueDeviceID": identity.udid,
            "SerialNumber": identity.serial_number,
            "DeviceName": identity.name,
        },
    }
    if encrypted:
        content["ManifestKey"] = b"\x03\x00\x00\x00" + hashlib.sha256(b"manifest" + key).digest()
    return plistlib.dumps(content)


def status_plist(*, state: str, full: bool, backup_uuid: str) -> bytes:
    """Status.plist: ``SnapshotState`` is "uploading" mid-backup and "finished" at the end."""
    return plistlib.dumps(
        {
            "BackupState": "new",
            "Date": datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0),
            "IsFullBackup": full,
            "SnapshotState": state,
            "UUID": backup_uuid,
            "Version": "3.3",
        },
        fmt=plistlib.FMT_BINARY,
    )


class StandInCipher:
    """AES-256-CBC under a key only the phone knows (see the module docstring)."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def encrypt(self, data: bytes) -> bytes:
        """PKCS#7-padded AES-CBC with a zero IV (what backups use per file)."""
        padder = padding.PKCS7(128).padder()
        padded = padder.update(data) + padder.finalize()
        encryptor = Cipher(algorithms.AES(self.key), modes.CBC(b"\x00" * 16)).encryptor()
        return encryptor.update(padded) + encryptor.finalize()

    def decrypt(self, data: bytes) -> bytes:
        """The inverse of :meth:`encrypt` (the phone reading its own Manifest.db back)."""
        decryptor = Cipher(algorithms.AES(self.key), modes.CBC(b"\x00" * 16)).decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
