"""The sidecar tables: every sidecar version rollkeeper wrote, the ones it left alone, and the
album links it made.

``library_sidecars`` keeps every version of every sidecar with the facts it carried: the newest
one says what the file on disk must still be for rollkeeper to rewrite it, and the older ones
remember an album removed on the phone. ``library_album_links`` is the only list of links under
``Albums/`` rollkeeper may ever remove.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rollkeeper.store.database import Database
from rollkeeper.store.library import json_list
from rollkeeper.store.records import ARCHIVED, utc_now_text


@dataclass(frozen=True, slots=True)
class SidecarVersion:
    """The newest sidecar rollkeeper wrote beside one archived file."""

    relative_path: str
    version: int
    content_hash: str
    facts: dict[str, object]


@dataclass(frozen=True, slots=True)
class KnownSidecar:
    """Every version rollkeeper wrote of one sidecar: the newest, and the hash of each."""

    latest_hash: str
    facts: dict[str, object]
    hashes: frozenset[str]


def _facts(text: object) -> dict[str, object]:
    try:
        facts = json.loads(str(text))
    except ValueError:
        return {}
    return facts if isinstance(facts, dict) else {}


class SidecarRepository:
    """Reads and writes of the sidecar and album-link tables, on a store's one connection."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- sidecars ------------------------------------------------------------------------------

    def latest_sidecar(self, relative_path: str) -> SidecarVersion | None:
        """The newest sidecar version written beside an archived file, if any."""
        row = self._database.execute(
            "SELECT relative_path, version, content_hash, facts FROM library_sidecars"
            " WHERE relative_path = ? ORDER BY version DESC LIMIT 1",
            (relative_path,),
        ).fetchone()
        if row is None:
            return None
        return SidecarVersion(str(row[0]), int(row[1]), str(row[2]), _facts(row[3]))

    def known_sidecars(self) -> dict[str, KnownSidecar]:
        """Every sidecar rollkeeper wrote, by archived file: its newest version and the hashes
        of all its versions (one query, whatever the number of sidecars)."""
        found: dict[str, tuple[int, str, dict[str, object], set[str]]] = {}
        rows = self._database.execute(
            "SELECT relative_path, version, content_hash, facts FROM library_sidecars"
            " ORDER BY relative_path, version"
        )
        for path, version, digest, facts in rows:
            entry = found.get(str(path))
            hashes = entry[3] if entry is not None else set()
            hashes.add(str(digest))
            found[str(path)] = (int(version), str(digest), _facts(facts), hashes)
        return {
            path: KnownSidecar(digest, facts, frozenset(hashes))
            for path, (_, digest, facts, hashes) in found.items()
        }

    def add_sidecar_versions(
        self, rows: Iterable[tuple[str, str, dict[str, object]]], now: datetime | None = None
    ) -> None:
        """Record ``(relative_path, content_hash, facts)`` versions in one transaction."""
        stamp = utc_now_text(now)
        with self._database.transaction():
            for relative_path, digest, facts in rows:
                self._insert_version(relative_path, digest, facts, stamp)

    def _insert_version(
        self, relative_path: str, digest: str, facts: dict[str, object], stamp: str
    ) -> int:
        row = self._database.execute(
            "SELECT coalesce(max(version), 0) FROM library_sidecars WHERE relative_path = ?",
            (relative_path,),
        ).fetchone()
        version = int(row[0]) + 1
        self._database.execute(
            "INSERT INTO library_sidecars (relative_path, version, content_hash, facts,"
            " written_at) VALUES (?, ?, ?, ?, ?)",
            (
                relative_path,
                version,
                digest,
                json.dumps(facts, ensure_ascii=False, sort_keys=True),
                stamp,
            ),
        )
        return version

    def sidecar_versions(self, relative_path: str) -> int:
        """How many versions of a sidecar rollkeeper wrote."""
        row = self._database.execute(
            "SELECT count(*) FROM library_sidecars WHERE relative_path = ?", (relative_path,)
        ).fetchone()
        return int(row[0])

    def add_sidecar_version(
        self,
        relative_path: str,
        content_hash: str,
        facts: dict[str, object],
        now: datetime | None = None,
    ) -> int:
        """Record one sidecar version; returns its version number."""
        with self._database.transaction():
            return self._insert_version(relative_path, content_hash, facts, utc_now_text(now))

    def replace_sidecar_notes(
        self, udid: str, notes: Iterable[tuple[str, str]], now: datetime | None = None
    ) -> None:
        """The sidecars this read of a phone left alone, ``(relative_path, reason)``."""
        stamp = utc_now_text(now)
        with self._database.transaction():
            self._database.execute("DELETE FROM library_sidecar_notes WHERE udid = ?", (udid,))
            self._database.executemany(
                "INSERT OR REPLACE INTO library_sidecar_notes (udid, relative_path, reason,"
                " noted_at) VALUES (?, ?, ?, ?)",
                ((udid, path, reason, stamp) for path, reason in notes),
            )

    def sidecar_notes(self, udid: str, limit: int = 100) -> list[tuple[str, str]]:
        """``(relative_path, reason)`` of the sidecars the last read of a phone left alone."""
        rows = self._database.execute(
            "SELECT relative_path, reason FROM library_sidecar_notes WHERE udid = ?"
            " ORDER BY relative_path LIMIT ?",
            (udid, limit),
        ).fetchall()
        return [(str(path), str(reason)) for path, reason in rows]

    # -- album folders -----------------------------------------------------------------------

    def album_links(self) -> dict[str, tuple[str, str]]:
        """``link_path -> (target_path, kind)`` of every link rollkeeper made under Albums/."""
        rows = self._database.execute(
            "SELECT link_path, target_path, kind FROM library_album_links"
        ).fetchall()
        return {str(link): (str(target), str(kind)) for link, target, kind in rows}

    def set_album_link(self, link_path: str, target_path: str, kind: str) -> None:
        """Remember a link just made."""
        self._database.execute(
            "INSERT OR REPLACE INTO library_album_links (link_path, target_path, kind)"
            " VALUES (?, ?, ?)",
            (link_path, target_path, kind),
        )

    def record_album_links(
        self, made: Iterable[tuple[str, str, str]], forgotten: Iterable[str]
    ) -> None:
        """What a rebuild of the album folders did, in one transaction."""
        with self._database.transaction():
            for link_path in forgotten:
                self.forget_album_link(link_path)
            for link_path, target_path, kind in made:
                self.set_album_link(link_path, target_path, kind)

    def forget_album_link(self, link_path: str) -> None:
        """Forget a link removed (or no longer ours)."""
        self._database.execute("DELETE FROM library_album_links WHERE link_path = ?", (link_path,))

    def albums_by_archive_path(self) -> dict[str, set[str]]:
        """Album titles of every archived file, over every phone's last applied read."""
        rows = self._database.execute(
            "SELECT f.archive_path, a.albums FROM library_assets a JOIN phone_files f"
            " ON f.udid = a.udid AND f.folder = a.phone_folder AND f.name = a.phone_name"
            f" AND f.status = '{ARCHIVED}' WHERE a.albums != '[]' AND f.archive_path IS NOT NULL"
        ).fetchall()
        found: dict[str, set[str]] = {}
        for path, albums in rows:
            found.setdefault(str(path), set()).update(json_list(albums))
        return found
