"""The ``audit --json`` document (docs/status.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollkeeper.audit.classify import CLASSES, NOT_ON_PHONE, PhoneAudit

#: Version of the ``--json`` document.
JSON_VERSION = 1


def audit_as_dict(audits: Sequence[PhoneAudit]) -> dict[str, Any]:
    """The ``audit --json`` document (docs/status.md)."""
    phones = []
    for audit in audits:
        counts: dict[str, int | None] = {name: audit.count(name) for name in CLASSES}
        if audit.photos_library != "read":
            counts[NOT_ON_PHONE] = None
        phones.append(
            {
                "udid": audit.udid,
                "name": audit.name,
                "model": audit.model,
                "ios_version": audit.ios_version,
                "complete": audit.complete,
                "counts": counts,
                "photos_library": {
                    "status": audit.photos_library,
                    "detail": audit.photos_library_detail,
                },
                "originals_only_in_icloud": (
                    None
                    if audit.photos_library != "read"
                    else {
                        "count": len(audit.icloud_only),
                        "items": [
                            {
                                "name": item.name,
                                "uuid": item.uuid,
                                "phone_path": item.phone_path,
                                "captured_at": item.captured_at,
                                "reason": item.reason,
                            }
                            for item in audit.icloud_only
                        ],
                    }
                ),
                "files": [
                    {
                        "phone_path": item.phone_path,
                        "size": item.size,
                        "class": item.file_class,
                        "reason": item.reason,
                        "archive_path": item.archive_path,
                    }
                    for item in audit.files
                ],
            }
        )
    return {
        "version": JSON_VERSION,
        "complete": all(audit.complete for audit in audits),
        "phones": phones,
    }
