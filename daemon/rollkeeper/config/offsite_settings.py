"""The ``[offsite]`` section: a second copy of the archive elsewhere, made by restic or rclone.

rollkeeper does not store anything offsite itself: it runs the engine you chose, on the archive,
after a complete backup (at most every ``min_interval_hours``), and records what the engine did.
Secrets stay out of the config: the restic password comes from ``password_file`` (or the
environment), cloud credentials from ``environment_file`` (or the environment), and both files
must be private (mode 0600). See docs/offsite.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, model_validator

from rollkeeper.config.field_types import (
    Section,
    StrictNumber,
    StrictText,
    check_filesystem,
    expand_path_value,
)
from rollkeeper.config.filesystem import secret_file_problem


def _secret_file(value: str, info: ValidationInfo) -> str:
    """An absolute path to a private file (or "" for none), ``~`` and ``$VARIABLES`` expanded."""
    if not value:
        return value
    path = expand_path_value(value, info)
    if check_filesystem(info):
        problem = secret_file_problem(path)
        if problem is not None:
            raise ValueError(problem)
    return str(path)


SecretFile = Annotated[StrictText, AfterValidator(_secret_file)]


class OffsiteSettings(Section):
    section_help = (
        "A second copy of the archive elsewhere (a cloud bucket, a server, a NAS), made by restic "
        "or rclone after each complete backup. Off until engine is set. See docs/offsite.md."
    )

    engine: Literal["", "restic", "rclone"] = Field(
        default="",
        description=(
            '"restic" (snapshots, encrypted, deduplicated), "rclone" (a plain copy of the '
            'files), or "" for no offsite copies.'
        ),
    )
    repository: StrictText = Field(
        default="",
        description=(
            "restic: the repository, in restic's own syntax (s3:s3.amazonaws.com/bucket/photos, "
            "b2:bucket:photos, sftp:user@host:/srv/restic, /mnt/nas/restic). Create it once "
            "with `rollkeeper offsite init`."
        ),
    )
    remote: StrictText = Field(
        default="",
        description=(
            "rclone: where the archive is copied, in rclone's syntax (remote:bucket/photos, "
            "with the remote set up by `rclone config`)."
        ),
    )
    password_file: SecretFile = Field(
        default="",
        description=(
            "restic: a private file (chmod 600) holding the repository password; rclone: the "
            'password of an encrypted rclone.conf. "" = from the environment '
            "(RESTIC_PASSWORD_FILE, RESTIC_PASSWORD_COMMAND, RCLONE_CONFIG_PASS)."
        ),
    )
    environment_file: SecretFile = Field(
        default="",
        description=(
            "A private file (chmod 600) of KEY=VALUE lines handed to the engine: cloud "
            "credentials such as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or B2_ACCOUNT_ID "
            'and B2_ACCOUNT_KEY. "" = none (the service\'s own environment is passed on).'
        ),
    )
    min_interval_hours: StrictNumber = Field(
        default=24.0,
        ge=0,
        allow_inf_nan=False,
        description=(
            "A copy starts after a complete backup, but at most this often (0 = after every "
            "complete backup); a backup sooner than that is copied when the interval is over."
        ),
    )
    retention: tuple[StrictText, ...] = Field(
        default=(),
        description=(
            "restic only: the arguments of `restic forget` that say which snapshots to keep, "
            'e.g. ["--keep-daily", "7", "--keep-monthly", "24"]; run with --prune after each '
            "copy. Empty = rollkeeper never deletes a snapshot."
        ),
    )
    extra_arguments: tuple[StrictText, ...] = Field(
        default=(),
        description=(
            "More arguments for the engine's copy command, e.g. restic's "
            '["--limit-upload", "2000"] or rclone\'s ["--bwlimit", "2M"].'
        ),
    )
    executable: StrictText = Field(
        default="",
        description='The engine\'s program; "" = restic or rclone found on PATH.',
    )
    stale_after_days: StrictNumber = Field(
        default=7.0,
        gt=0,
        allow_inf_nan=False,
        description="Warn (status) when the last successful offsite copy is this many days old.",
    )

    @model_validator(mode="after")
    def _destination_for_engine(self) -> OffsiteSettings:
        if self.engine == "restic" and not self.repository:
            raise ValueError('engine = "restic" needs repository (where restic stores snapshots)')
        if self.engine == "rclone" and not self.remote:
            raise ValueError('engine = "rclone" needs remote (where rclone copies the archive)')
        if self.retention:
            if self.engine == "rclone":
                raise ValueError(
                    "retention is restic's: rclone copy never deletes anything on the remote"
                )
            if not self.retention[0].startswith("--keep-"):
                raise ValueError(
                    "retention must start with a restic keep policy such as --keep-daily "
                    f"(got {self.retention[0]!r})"
                )
            if any(argument in ("--prune", "--dry-run") for argument in self.retention):
                raise ValueError("retention takes only keep policies (--prune is added)")
        return self
