"""Whether the archive is there, and the words for each way it is not (pure).

:mod:`rollkeeper.archive.identity` looks at the disk and returns an :class:`ArchiveState`;
this module says what each state means for a run (may it write? is it "backed up"?) and how
it is told to people, so a run's error, ``status`` and a notification say the same thing.
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass

#: Where removable disks are mounted: an archive under these is never created implicitly
#: (an empty folder there is an unmounted disk's mount point, not a new archive).
REMOVABLE_MEDIA_ROOTS = ("/media", "/mnt", "/run/media", "/Volumes")

#: The reason a run that could not reach its archive is recorded with.
ARCHIVE_UNAVAILABLE = "archive_unavailable"


class ArchiveProblem(enum.Enum):
    """Why the archive cannot be used (or what must happen first)."""

    #: No archive recorded and none found: the first run may create one where allowed.
    NEW = "new"
    #: Files are recorded and the folder holds some of them, but no marker (before issue 13).
    UPGRADE = "upgrade"
    MISSING_ROOT = "missing_root"
    MISSING_MARKER = "missing_marker"
    NOT_A_FOLDER = "not_a_folder"
    NOT_ALLOWED = "not_allowed"
    NOT_WRITABLE = "not_writable"
    UNREADABLE = "unreadable"
    OTHER_ARCHIVE = "other_archive"
    OTHER_FILESYSTEM = "other_filesystem"


@dataclass(frozen=True, slots=True)
class ArchiveState:
    """What the availability check found at the archive root."""

    root: str
    #: None: the archive is there, carries the recorded id, and may be written.
    problem: ArchiveProblem | None = None
    #: The id the state records (or the one just made).
    archive_id: str = ""
    #: The id the marker found at the root carries, when there is one.
    marker_id: str = ""
    #: The root's parent is missing too (the disk's mount point itself is gone).
    parent_missing: bool = False
    detail: str = ""

    @property
    def available(self) -> bool:
        """The archive is there and is the recorded one."""
        return self.problem is None

    @property
    def reason(self) -> str:
        """The words for people (empty when available)."""
        return archive_problem_words(self)


def archive_problem_words(state: ArchiveState) -> str:
    """One sentence saying what is wrong with the archive and what to do."""
    root = state.root
    problem = state.problem
    if problem is None:
        return ""
    words = {
        ArchiveProblem.NEW: (
            f"archive {root} has not been set up (rollkeeper makes an archive folder by itself"
            " only inside your home folder, on its disk): run `rollkeeper archive init` to make"
            " it the archive"
        ),
        ArchiveProblem.UPGRADE: f"archive {root} has no identity marker yet",
        ArchiveProblem.MISSING_ROOT: f"archive {root} not found: is the disk mounted?",
        ArchiveProblem.MISSING_MARKER: (
            f"archive {root} not found: is the disk mounted? (the folder is there but holds"
            " no archive marker)"
        ),
        ArchiveProblem.NOT_A_FOLDER: f"archive {root} is not a folder",
        ArchiveProblem.NOT_ALLOWED: f"archive {root} is there but not allowed: {state.detail}. "
        + not_allowed_fix(root),
        ArchiveProblem.NOT_WRITABLE: f"archive {root} is read-only for this user",
        ArchiveProblem.UNREADABLE: f"archive {root} cannot be read: {state.detail}",
        ArchiveProblem.OTHER_ARCHIVE: (
            f"{root} holds another archive (id {state.marker_id}, made {state.detail}), not"
            f" this state's archive {state.archive_id}: refusing to write into it"
        ),
        ArchiveProblem.OTHER_FILESYSTEM: (
            f"archive {root} is on another disk than the one it was made on ({state.detail}):"
            " refusing; if you moved the archive to this disk on purpose, run"
            " `rollkeeper archive init`"
        ),
    }
    return words[problem]


def not_allowed_fix(root: str) -> str:
    """How to grant access: macOS privacy settings for /Volumes, permissions elsewhere."""
    if sys.platform == "darwin" or root.startswith("/Volumes"):
        return (
            "macOS keeps background agents out of removable volumes until allowed: System"
            " Settings > Privacy & Security > Files and Folders (or Full Disk Access), allow"
            " rollkeeper's Python to access removable volumes"
        )
    return f"give this user read and write access to {root} (ls -ld shows its owner and mode)"


def is_backed_up_allowed(state: ArchiveState | None, open_findings: int, lost: int) -> bool:
    """Whether "backed up" may be said: the archive is there and nothing is in question."""
    if state is not None and not state.available:
        return False
    return open_findings == 0 and lost == 0
