"""How the simulated phone behaves when a host asks it for a full backup (mobilebackup2).

Part of :class:`~rollkeeper.simulator.phone.PhoneState`: the mobilebackup2 server reads it at
each backup, tests change it with ``Simulator.update_phone``. The defaults are a phone without
a passcode prompt, unencrypted backups and iCloud Photos off: the camera roll is in the backup.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

#: What a real phone waits for the passcode before giving up with ErrorCode 208 (about 3
#: minutes, libimobiledevice #1380). Tests set a fraction of a second.
REAL_PASSCODE_WAIT_SECONDS = 180.0


@dataclass
class BackupBehaviour:
    """The phone's side of mobilebackup2: what it backs up and what goes wrong."""

    #: The DeviceLink major version the phone offers: 400 from iOS 16.1 (libimobiledevice
    #: #1379); 300 on older phones. libimobiledevice 1.3.0 refuses anything above 300.
    device_link_major: int = 400
    #: "Encrypt local backup" is on (lockdown ``WillEncrypt``): files and Manifest.db leave the
    #: phone encrypted with keys the host does not have.
    will_encrypt: bool = False
    #: iCloud Photos is on: the phone leaves the camera roll (``CameraRollDomain``) out.
    icloud_photos: bool = False
    #: iOS 16.1+ with a passcode: after the Backup request the phone asks for the passcode on
    #: its screen and the host hears nothing until it is entered or the wait runs out (208).
    passcode_prompt: bool = False
    passcode_wait_seconds: float = REAL_PASSCODE_WAIT_SECONDS
    #: The upload size the phone claims to need (None: the real size of what it will send). A
    #: claim larger than the host's free space leads to DLMessagePurgeDiskSpace, then 105.
    claimed_upload_bytes: int | None = None
    #: Cut the cable once this many file bytes have been sent in one backup (one-shot).
    unplug_after_bytes: int | None = None
    #: Files outside the media folder that the backup carries: (domain, relative path) ->
    #: content. Defaults to a few small system and app files.
    extra_files: dict[tuple[str, str], bytes] = field(default_factory=lambda: dict(DEFAULT_EXTRA))
    #: Set while the passcode prompt shows; ``Simulator.enter_passcode`` sets it.
    passcode_entered: asyncio.Event | None = None
    #: The AFC connection holding the sync lock (``/com.apple.itunes.lock_sync``), if any.
    sync_lock_holder: object | None = None
    #: Backups completed, and file bytes sent by the last one (tests compare incremental runs).
    backups_completed: int = 0
    last_backup_bytes_sent: int = 0
    last_backup_files_sent: int = 0


DEFAULT_EXTRA: dict[tuple[str, str], bytes] = {
    (
        "HomeDomain",
        "Library/Preferences/com.apple.springboard.plist",
    ): b"<plist>springboard</plist>",
    ("HomeDomain", "Library/SMS/sms.db"): b"SQLite format 3\x00" + b"\x00" * 1008,
    ("HomeDomain", "Library/AddressBook/AddressBook.sqlitedb"): b"SQLite format 3\x00"
    + b"\x01" * 496,
    ("WirelessDomain", "Library/Preferences/com.apple.wifi.plist"): b"<plist>wifi</plist>",
    ("AppDomain-com.example.notes", "Documents/notes.txt"): b"buy milk\n",
}
