"""The state of one simulated iPhone: who it is, whether it trusts us, and what goes wrong.

This is the contract shared by the simulator's parts: the usbmuxd and lockdownd servers read
identity, plug, lock and trust state from here; the AFC server reads the media root, the faults
and the throttle, and counts requests here. Tests change it through
:class:`rollkeeper.simulator.Simulator` (thread-safe), never by poking these objects from another
thread.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rollkeeper.simulator.backup_behaviour import BackupBehaviour


class TrustPolicy(enum.Enum):
    """How the phone answers a host that asks to pair (the "Trust This Computer?" dialog)."""

    #: A pair record for the host already exists: ReadPairRecord serves it, ValidatePair passes.
    PAIRED = "paired"
    #: Not paired yet: Pair answers PairingDialogResponsePending ``pending_polls`` times, then
    #: pairs.
    ACCEPT = "accept"
    #: Not paired yet: Pair answers PairingDialogResponsePending, then UserDeniedPairing.
    DENY = "deny"


@dataclass
class PhoneIdentity:
    """What lockdownd's GetValue reports about the phone.

    The defaults are the simulator's generic phone (an iPhone 14 Pro on iOS 17.5.1); the
    generations of real phones are :data:`.lockdown_values.PHONE_PROFILES`.
    """

    udid: str
    name: str = "iPhone"
    product_type: str = "iPhone15,2"
    product_version: str = "17.5.1"
    build_version: str = "21F90"
    serial_number: str = "F2LXXXXXXXXX"
    wifi_address: str = "a0:b1:c2:d3:e4:f5"
    device_class: str = "iPhone"
    hardware_model: str = "D73AP"
    hardware_platform: str = "t8120"
    cpu_architecture: str = "arm64e"
    chip_id: int = 0x8120
    board_id: int = 12
    model_number: str = "MQ0G3"
    firmware_version: str = "iBoot-10151.122.1"
    #: Whether DeviceName is among the values answered before a session. The generic phone says
    #: yes (as the simulator always did); the real-phone profiles follow the public dumps, in
    #: which a session-less query has no DeviceName (go-ios, libimobiledevice issues).
    name_before_session: bool = True


@dataclass(frozen=True)
class HostileEntry:
    """A directory entry a malicious phone could send, served without existing on the host.

    ``name`` is sent verbatim in READ_DIR (it may hold ``../``, ``/``, control characters or be
    4,096 characters long). ``kind`` is the ``st_ifmt`` reported by GET_FILE_INFO: ``S_IFREG``,
    ``S_IFDIR`` or ``S_IFLNK``. A regular hostile entry serves ``content`` when read.
    """

    name: str
    kind: str = "S_IFREG"
    content: bytes = b"hostile"
    link_target: str = "/etc/passwd"


@dataclass
class AfcFaults:
    """Faults the AFC server injects, keyed by the phone-side path (``/DCIM/100APPLE/X.MOV``)."""

    #: Drop the whole phone (as an unplug: every connection closes, Detached is sent) once this
    #: many bytes of the file have been served in total across all reads of it.
    unplug_after_bytes: dict[str, int] = field(default_factory=dict)
    #: Answer READ with AFC error 4 (read error) once this many bytes of the file were served.
    read_error_after_bytes: dict[str, int] = field(default_factory=dict)
    #: Answer GET_FILE_INFO and FILE_OPEN with error 8 (object not found) for these paths.
    not_found: set[str] = field(default_factory=set)
    #: Report this st_size in GET_FILE_INFO instead of the real size (the bytes served are real).
    stat_size: dict[str, int] = field(default_factory=dict)
    #: Leave these keys out of the GET_FILE_INFO reply for the path.
    stat_missing_keys: dict[str, set[str]] = field(default_factory=dict)
    #: Override st_birthtime / st_mtime (nanoseconds since the epoch) for the path.
    stat_birthtime_ns: dict[str, int] = field(default_factory=dict)
    stat_mtime_ns: dict[str, int] = field(default_factory=dict)
    #: Serve this many extra bytes at the end of the file (a file that grows while being read).
    grows_by_bytes: dict[str, int] = field(default_factory=dict)
    #: Never answer a READ of this path (a stuck phone); the connection stays open.
    stuck_reads: set[str] = field(default_factory=set)
    #: Never answer a GET_FILE_INFO of this path (a stuck phone); later requests are answered.
    stuck_stats: set[str] = field(default_factory=set)
    #: Drop the whole phone (as an unplug) when a GET_FILE_INFO of this path arrives, unanswered
    #: (one-shot: the path is removed from the set).
    unplug_at_stat: set[str] = field(default_factory=set)
    #: Extra entries listed in a folder (key: folder path such as ``/DCIM/100APPLE``).
    hostile_entries: dict[str, list[HostileEntry]] = field(default_factory=dict)
    #: Limit the bytes per second served by READ over all AFC connections of this phone
    #: (None = as fast as the host allows). 35e6 imitates USB 2, 300e6 USB 3.
    throttle_bytes_per_second: float | None = None
    # -- seen on real phones (docs/simulator.md, "Real phones"; sources there) ---------------
    #: Paths refused with PERM_DENIED (10), and everything below them: READ_DIR, GET_FILE_INFO
    #: and FILE_OPEN (a folder the phone will not show inside an otherwise readable tree).
    permission_denied: set[str] = field(default_factory=set)
    #: afcd's open files per connection: FILE_OPEN beyond this answers NO_RESOURCES (3), what
    #: afcd logs as "No file slots" (None: the simulator's own bound of 256 applies).
    file_slots: int | None = None
    #: READs of the file serve its bytes up to N, then every READ from N on answers IO_ERROR
    #: (20), while the listing and the stat stay fine (an iCloud-optimized original).
    io_error_after_bytes: dict[str, int] = field(default_factory=dict)


@dataclass
class PhoneState:
    """Everything the simulator knows about one phone. Mutated only on the simulator's loop."""

    identity: PhoneIdentity
    #: The local folder served as the AFC root (the phone's media folder, holding ``DCIM/``).
    media_root: Path
    plugged: bool = True
    locked: bool = False
    trust: TrustPolicy = TrustPolicy.PAIRED
    #: With ACCEPT or DENY: how many Pair requests answer PairingDialogResponsePending first.
    pending_polls: int = 0
    #: usbmuxd DeviceID, assigned by the simulator when the phone is added.
    device_id: int = 0
    #: Connection type reported by usbmuxd: "USB" or "Network".
    connection_type: str = "USB"
    faults: AfcFaults = field(default_factory=AfcFaults)
    #: AFC requests received, by operation name (``READ_DIR``, ``GET_FILE_INFO``, ``READ`` ...).
    afc_requests: Counter[str] = field(default_factory=Counter)
    #: Bytes served by READ, by phone-side path.
    afc_bytes_served: Counter[str] = field(default_factory=Counter)
    #: HostIDs this phone has paired with (filled by Pair, checked by ValidatePair/StartSession).
    paired_host_ids: set[str] = field(default_factory=set)
    #: When the phone was locked (the simulator loop's clock), None while unlocked: locked for
    #: more than an hour when plugged in means USB Restricted Mode.
    locked_since: float | None = None
    #: False after a restart until the passcode is entered once ("before first unlock"):
    #: lockdownd then refuses sessions with PasswordProtected.
    unlocked_since_boot: bool = True
    #: True while plugged in under USB Restricted Mode: every usbmux Connect is refused.
    usb_restricted: bool = False
    #: With ACCEPT or DENY: the "Trust This Computer?" dialog appears this many seconds after
    #: plug-in; until then Pair answers PairingDialogResponsePending and nobody can tap.
    trust_prompt_delay_seconds: float = 0.0
    #: When the phone was last plugged in (the simulator loop's clock).
    plugged_at: float = 0.0
    #: Tapping Trust re-enumerates a real phone on USB: detach, attach with a new DeviceID, open
    #: connections reset. False keeps the simulator's old behaviour (stays attached).
    reenumerate_on_trust: bool = True
    #: What the phone does when a host asks for a full backup (mobilebackup2).
    backup: BackupBehaviour = field(default_factory=BackupBehaviour)
