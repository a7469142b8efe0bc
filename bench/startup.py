"""Start-up time of the ``rollkeeper`` command, as ratios against a bare Python start.

Each side is one whole process (start-up, imports, the command, exit), measured by wall time.
The baseline is ``python -c "import argparse, sqlite3"`` with the same interpreter: what any
Python command line pays before it does anything. Every round runs every side once, the order
alternating from round to round, and the figure is the median over rounds of each command's
time divided by the baseline's in the same round (issue 19's targets: ``--help`` and
``--version`` within 2x, ``status``, ``config check`` and ``devices`` within 6x).

``--code DIR`` measures another tree of the code (``git archive REV | tar -x -C DIR``): its
``daemon/`` folder goes first on ``PYTHONPATH``, so the same interpreter and libraries run the
older code. The commands run against a config and a state database made here (one phone, a few
files), so ``status`` and ``devices`` read a real database.

    python -m bench.startup --rounds 20
    python -m bench.startup --rounds 20 --code /tmp/before
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench import common

SIZES: dict[str, dict[str, Any]] = {
    "smoke": {"rounds": 5},
    "full": {"rounds": 20},
}

#: The sides: name -> the rollkeeper arguments (None: the bare-Python baseline).
COMMANDS: dict[str, list[str] | None] = {
    "baseline": None,
    "--help": ["--help"],
    "--version": ["--version"],
    "status": ["status"],
    "config check": ["config", "check"],
    "devices": ["devices"],
}
#: The target of each command's ratio to the baseline.
TARGETS = {"--help": 2.0, "--version": 2.0, "status": 6.0, "config check": 6.0, "devices": 6.0}

BASELINE_SCRIPT = "import argparse, sqlite3"
#: What the installed console script runs (pip writes the same two lines).
ENTRY_SCRIPT = "import sys; from rollkeeper.cli import main; sys.exit(main())"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, help="alternating rounds (median reported)")
    parser.add_argument("--code", type=Path, help="another tree of the code to measure")


def make_state(path: Path) -> None:
    """One phone with a few archived files, so status and devices have rows to read. Run by
    the code being measured (:func:`_make_state`), so the schema is its own."""
    from rollkeeper.store import RunCounts, StateStore

    store = StateStore.open(path)
    try:
        udid = "00008110-00AA0000000000F1"
        store.record_device_seen(udid, name="Bench iPhone", product_type="iPhone15,2")
        run_id = store.start_run(udid)
        store.observe_files(
            udid,
            "/DCIM/100APPLE",
            [(f"IMG_{n:04d}.HEIC", 2_000_000, n * 10**9, n * 10**9) for n in range(1, 21)],
        )
        for entry in store.present_files(udid, "/DCIM/100APPLE").values():
            store.record_archived(
                entry.id,
                relative_path=f"2024/2024-01/{entry.name}",
                content_hash=f"{entry.id:064x}",
                hash_algorithm="blake3",
                size=entry.size,
                origin="backup",
                capture_time="2024-01-02T03:04:05+01:00",
                capture_source="exif",
            )
        store.finish_run(run_id, "complete", RunCounts(files_found=20, files_copied=20))
    finally:
        store.close()


def _make_state(setup: common.RollkeeperSetup, code: Path, environment: dict[str, str]) -> None:
    script = (
        "from pathlib import Path; from bench.startup import make_state; "
        f"make_state(Path({str(setup.state)!r}))"
    )
    pythonpath = f"{code / 'daemon'}{os.pathsep}{common.REPO}"
    common.require_ok(
        common.run_measured(
            [sys.executable, "-c", script], {**environment, "PYTHONPATH": pythonpath}
        ),
        "making the state database",
    )


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    size = {**SIZES[args.size], **{k: v for k, v in vars(args).items() if v is not None}}
    code = (args.code or common.REPO).resolve()
    setup = common.RollkeeperSetup(work / f"rollkeeper-startup-{code.name}").write()
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("ROLLKEEPER_")
    }
    if not setup.state.exists():
        _make_state(setup, code, environment)
    environment["PYTHONPATH"] = str(code / "daemon")
    environment["ROLLKEEPER_CONFIG"] = str(setup.config)
    # No cached bytecode is written by the side that runs first only: both sides find it.
    environment.pop("PYTHONDONTWRITEBYTECODE", None)

    def side(arguments: list[str] | None) -> common.Side:
        if arguments is None:
            command = [sys.executable, "-c", BASELINE_SCRIPT]
        else:
            command = [sys.executable, "-c", ENTRY_SCRIPT, *arguments]

        def once(_round: int) -> dict[str, Any]:
            result = common.run_measured(command, environment, cwd=work)
            if result.returncode not in (0, 1):
                common.require_ok(result, " ".join(command))
            return {"seconds": round(result.seconds, 4)}

        return once

    sides = {name: side(arguments) for name, arguments in COMMANDS.items()}
    for once in sides.values():
        once(0)  # warm the page cache and the bytecode for every side before measuring
    runs = common.paired_rounds(size["rounds"], sides)
    baseline = common.median([run["seconds"] for run in runs["baseline"]])
    figures: dict[str, Any] = {"baseline_seconds": round(baseline, 4), "commands": {}}
    rows = []
    for name in TARGETS:
        ratio = common.ratio_of_medians(runs, "seconds", name, "baseline")
        seconds = common.median([run["seconds"] for run in runs[name]])
        met = ratio <= TARGETS[name]
        figures["commands"][name] = {
            "seconds": round(seconds, 4),
            "ratio": ratio,
            "target": TARGETS[name],
            "met": met,
        }
        rows.append([name, round(seconds * 1000, 1), ratio, f"<= {TARGETS[name]:g}x", met])
    common.print_table(
        f"Start-up ({code}; baseline {baseline * 1000:.1f} ms, {size['rounds']} rounds)",
        ["command", "ms (median)", "ratio", "target", "met"],
        rows,
    )
    common.write_results("startup", work, {**size, "code": str(code)}, {**figures, "runs": runs})
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="smoke")
    parser.add_argument("--work", type=Path, default=None, help="keep the setup here")
    add_arguments(parser)
    args = parser.parse_args()
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        run(args, args.work)
        return 0
    import tempfile

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rk-startup-") as folder:
        run(args, Path(folder))
    print(f"  ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
