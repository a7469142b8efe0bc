"""The ``[archive]`` section: where the backup goes and how files are filed in it.

The layout template is checked by the domain's own rules (the ones the archive renders paths
with), so the config never accepts a layout the archive would refuse; this module adds only
"did you mean" hints for misspelt placeholders.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from rollkeeper.config.field_types import ArchiveFolder, Section, StrictText
from rollkeeper.config.suggest import did_you_mean
from rollkeeper.domain.layout import LAYOUT_PLACEHOLDERS
from rollkeeper.domain.layout import validate_layout as layout_problems

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def validate_layout(layout: str) -> str:
    """Check an ``archive.layout`` template; raise ValueError listing what is wrong.

    The rules are the domain's (:func:`rollkeeper.domain.layout.validate_layout`, which the
    archive uses when it renders paths), so the config never accepts a layout the archive
    would refuse. Here we only add "did you mean" hints for misspelt placeholders.
    """
    problems = layout_problems(layout)
    if not problems:
        return layout
    message = "; ".join(problems)
    for name in _PLACEHOLDER.findall(layout):
        if name in LAYOUT_PLACEHOLDERS:
            continue
        hint = did_you_mean(name, LAYOUT_PLACEHOLDERS, quote="{}")
        if hint:
            written = "{" + name + "}"
            message = message.replace(
                f"unknown placeholder {written}", f"unknown placeholder {written}{hint}", 1
            )
    raise ValueError(message)


class ArchiveSettings(Section):
    section_help = "Where the backup goes and how files are filed in it."

    path: ArchiveFolder = Field(
        default=Path("~/Pictures/rollkeeper"),
        description=(
            "The archive folder: every photo and video is copied under it. ~ and $VARIABLES "
            "are expanded; a relative path is an error (the service does not run in your "
            "working folder). A missing or unreachable folder is not a config error: runs "
            "fail as archive_unavailable, writing nothing, until it is there (an unmounted "
            "disk). The first run creates it only under your home folder (or marks a folder "
            "that exists outside /media, /mnt, /run/media, /Volumes); elsewhere run "
            "`rollkeeper archive init`."
        ),
    )
    layout: Annotated[StrictText, AfterValidator(validate_layout)] = Field(
        default="{year}/{year}-{month}/{name}",
        description=(
            "Where a file goes inside the archive, by its capture date in the local time of "
            "capture. Placeholders: {year} {month} {day} {hour} {minute} {name} (IMG_1234.HEIC) "
            "{stem} (IMG_1234) {extension} (HEIC, no dot) {device_name} {udid}. It must end in "
            "{name} or in {stem}...{extension} (e.g. {stem}.{extension}), so files keep their "
            "own names. A new layout applies to "
            "files copied from then on; files already archived are not moved."
        ),
    )
    collision: Literal["suffix"] = Field(
        default="suffix",
        description=(
            "What to do when a different file already has the target name. The archive never "
            'overwrites: "suffix" (the only rule for now) adds ~2, ~3, ... before the '
            "extension (IMG_1234~2.HEIC), and every member of a Live Photo pair or edit group "
            "gets the same suffix. The same content is never stored twice."
        ),
    )
