"""Carrying out an install or uninstall plan, step by step, stopping at the first real failure.

Files are written 0644 (service managers read them; they hold no secret), private folders are
made 0700, and a folder on a missing disk is never created on the system disk instead. A
service-manager command that fails stops the plan with its output and, where the cause is a
session without a user manager (ssh, su), a hint at what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rollkeeper.host.permissions import ensure_private_dir
from rollkeeper.host.unit_install.errors import ServiceInstallError
from rollkeeper.host.unit_install.locations import Platform
from rollkeeper.host.unit_install.manager_commands import Runner, run_command
from rollkeeper.host.unit_install.plan import MakeDir, RemoveFile, ServicePlan, Step, WriteFile


@dataclass(frozen=True)
class StepResult:
    """How one step went: ``ok``, and what the step or its command said."""

    step: Step
    ok: bool
    detail: str = ""


def execute_plan(
    plan: ServicePlan, runner: Runner = run_command, echo: Callable[[str], None] = print
) -> list[StepResult]:
    """Carry the plan out in order, echoing each step; stop at the first failure that matters.

    Raises :class:`ServiceInstallError` naming the failed step and its output.
    """
    results: list[StepResult] = []
    for step in plan.steps:
        echo(step.describe())
        if isinstance(step, WriteFile):
            step.path.parent.mkdir(parents=True, exist_ok=True)
            step.path.write_text(step.content, encoding="utf-8")
            step.path.chmod(0o644)  # service managers read it; it holds no secret
            results.append(StepResult(step, True))
        elif isinstance(step, RemoveFile):
            existed = step.path.exists()
            step.path.unlink(missing_ok=True)
            results.append(StepResult(step, True, "" if existed else "was not there"))
        elif isinstance(step, MakeDir):
            if step.private:
                ensure_private_dir(step.path)
            elif step.path.parent.is_dir():
                # An existing folder (say ~/Pictures) keeps its mode: it is not ours to change.
                step.path.mkdir(mode=0o700, exist_ok=True)
            else:
                echo(
                    f"  not creating {step.path}: {step.path.parent} does not exist "
                    "(an unplugged disk?); rollkeeper will say so until it is there"
                )
                results.append(StepResult(step, False, "parent missing"))
                continue
            results.append(StepResult(step, True))
        else:
            try:
                completed = runner(step.argv)
            except FileNotFoundError:
                raise ServiceInstallError(
                    f"{step.argv[0]} not found: is this a {plan.platform} machine with its "
                    "service manager?"
                ) from None
            output = (completed.stderr or completed.stdout or "").strip()
            ok = completed.returncode == 0
            results.append(StepResult(step, ok, output))
            if not ok and not step.may_fail:
                raise ServiceInstallError(
                    f"`{' '.join(step.argv)}` failed (exit {completed.returncode}): "
                    f"{output or 'no output'}" + _manager_hint(plan.platform, output)
                )
    return results


def _manager_hint(platform: Platform, output: str) -> str:
    if platform == "linux" and ("bus" in output.lower() or "XDG_RUNTIME_DIR" in output):
        return (
            ". There is no user service manager in this session (e.g. over ssh or su): log in "
            "normally, or run `sudo loginctl enable-linger $USER` and log in again"
        )
    return ""
