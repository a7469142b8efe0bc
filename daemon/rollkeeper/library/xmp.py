"""The XMP sidecar of one archived file, as bytes: albums, favourite, hidden, deleted, date.

Written with the standard library's ElementTree, not by joining strings: album titles come
from the phone and may hold ``<``, ``&``, quotes or anything else, and the serializer escapes
every text node. Characters XML 1.0 cannot carry at all (control characters) are dropped
before (:func:`rollkeeper.domain.library.printable_title`). Why not python-xmp-toolkit: it is
a ctypes wrapper over the Exempi C library, which would become a system dependency of
rollkeeper (and of CI, on Linux and macOS) to write a fixed set of eight properties; the
sidecar is never read back by rollkeeper, only compared byte for byte, so what matters is that
the same facts always give the same bytes, which a fixed element order gives.

The properties, and who reads them (docs/library.md):

* ``dc:subject`` — album titles, plus ``Hidden`` and ``Recently Deleted`` as keywords
  (digiKam, darktable, Immich via exiftool's ``Subject``/``Keywords``);
* ``lr:hierarchicalSubject`` — ``Albums|<title>``, ``Photos|Hidden``,
  ``Photos|Recently Deleted`` (digiKam and darktable tag trees, Immich tags);
* ``xmp:Rating`` — 5 for a favourite (absent otherwise);
* ``exif:DateTimeOriginal`` and ``photoshop:DateCreated`` — the library's capture date with
  its offset (``2023-07-14T18:32:05+02:00``);
* ``rollkeeper:AssetUUID`` — the library's UUID of each asset stored as this file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import timedelta

from rollkeeper.archive.locations import SIDECAR_SUFFIX as ARCHIVE_SIDECAR_SUFFIX
from rollkeeper.domain.layout import CaptureDate
from rollkeeper.domain.library import SidecarFacts, printable_title

#: The name of a sidecar beside ``IMG_1234.HEIC``: ``IMG_1234.HEIC.xmp`` (digiKam, darktable,
#: and Immich, which also reads ``IMG_1234.xmp``); the one definition is the archive's.
SIDECAR_SUFFIX = ARCHIVE_SIDECAR_SUFFIX

NAMESPACES = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "rollkeeper": "urn:rollkeeper:library:1.0#",
}
HIDDEN_KEYWORD = "Hidden"
DELETED_KEYWORD = "Recently Deleted"
FAVORITE_RATING = "5"

for _prefix, _uri in NAMESPACES.items():
    ElementTree.register_namespace(_prefix, _uri)


def _tag(prefix: str, name: str) -> str:
    return f"{{{NAMESPACES[prefix]}}}{name}"


def _bag(parent: ElementTree.Element, prefix: str, name: str, items: list[str]) -> None:
    if not items:
        return
    container = ElementTree.SubElement(parent, _tag(prefix, name))
    bag = ElementTree.SubElement(container, _tag("rdf", "Bag"))
    for item in items:
        ElementTree.SubElement(bag, _tag("rdf", "li")).text = item


def xmp_date(capture: CaptureDate) -> str:
    """An XMP date: local time of capture with its offset when known."""
    text = capture.local.isoformat(timespec="seconds")
    offset = capture.utc_offset
    if offset is None:
        return text
    minutes = int(offset / timedelta(minutes=1))
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}:{rest:02d}"


def sidecar_bytes(facts: SidecarFacts) -> bytes:
    """The sidecar of ``facts`` (the same facts always give the same bytes)."""
    root = ElementTree.Element(_tag("x", "xmpmeta"), {_tag("x", "xmptk"): "rollkeeper"})
    rdf = ElementTree.SubElement(root, _tag("rdf", "RDF"))
    description = ElementTree.SubElement(
        rdf, _tag("rdf", "Description"), {_tag("rdf", "about"): ""}
    )
    if facts.favorite:
        ElementTree.SubElement(description, _tag("xmp", "Rating")).text = FAVORITE_RATING
    if facts.capture is not None:
        date = xmp_date(facts.capture)
        ElementTree.SubElement(description, _tag("exif", "DateTimeOriginal")).text = date
        ElementTree.SubElement(description, _tag("photoshop", "DateCreated")).text = date
    albums = [title for title in (printable_title(album) for album in facts.albums) if title]
    keywords = list(albums)
    hierarchy = [f"Albums|{title.replace('|', '/')}" for title in albums]
    if facts.hidden:
        keywords.append(HIDDEN_KEYWORD)
        hierarchy.append(f"Photos|{HIDDEN_KEYWORD}")
    if facts.recently_deleted:
        keywords.append(DELETED_KEYWORD)
        hierarchy.append(f"Photos|{DELETED_KEYWORD}")
    _bag(description, "dc", "subject", keywords)
    _bag(description, "lr", "hierarchicalSubject", hierarchy)
    _bag(description, "rollkeeper", "AssetUUID", [printable_title(uuid) for uuid in facts.uuids])
    ElementTree.indent(root, space=" ")
    body = ElementTree.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")
