"""Crash campaign: kill -9 a real ``rollkeeper run`` at seeded random instants of a backup.

One service process per trial, against one simulated phone that gains new photos every trial:

1. start ``rollkeeper run``; plug the phone in: this run finishes what the previous trial's
   killed process left (and is itself a restart after a crash);
2. when it ends, check every invariant (:func:`check_archive`): the archive holds exactly what
   the phone ever held, once, by hash; no ``.partial`` outside ``.rollkeeper/``; the database
   passes ``integrity_check`` and agrees with the files on disk;
3. unplug; add a new camera roll (every fifth trial the same names come back with new content,
   an IMG_9999 -> IMG_0001 rollover); plug in again; kill -9 the process at a random instant:
   when the phone has served a random number of bytes of the new content, or right after a
   random n-th ``file_archived`` line (which lands somewhere between placing and recording the
   next files).

The simulator is throttled so that a run lasts long enough for the instant to fall inside it.
A last process recovers the last trial. Figures: trials, kills that landed while files were
still being copied, failures, files and bytes checked.
"""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from rollkeeper.archive.locations import WORKING_FOLDER_NAME
from rollkeeper.importer.hashing import hash_file
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from tests import media
from tests.reliability.harness import ArchiveCheck, Tally, check_archive, wait_until
from tests.service_process import ServiceProcess, service_environment, write_config

#: Bytes per second a phone serves: a new roll (~0.6 MB) takes about a third of a second.
THROTTLE_BYTES_PER_SECOND = 2e6
#: Independent chains of trials run side by side (a phone, an archive and a service each).
CHAINS = 2
#: Ceiling for a run to finish.
RUN_TIMEOUT_SECONDS = 120.0


def _served(simulator: SimulatorThread, udid: str) -> int:
    return sum(simulator.afc_bytes_served(udid).values())


def _reached(simulator: SimulatorThread, service: ServiceProcess, udid: str, target: int) -> bool:
    """The kill instant: ``target`` bytes of the new roll served, or the run already over."""
    return (
        _served(simulator, udid) >= target or len(service.named("backup_finished", udid=udid)) > 1
    )


def _keep_events(path: Path, service: ServiceProcess, udid: str) -> None:
    """Write the events of a process that did not do what was awaited, for the post-mortem."""
    with path.open("w") as stream:
        for event in list(service.events):
            if event.get("udid") in (None, udid):
                stream.write(json.dumps(event) + "\n")
        for line in service.other_lines:
            stream.write(json.dumps({"line": line}) + "\n")


def crash_campaign(simulator: SimulatorThread, work: Path, trials: int, seed: int) -> Tally:
    """Run ``trials`` crash trials in :data:`CHAINS` parallel chains; returns the figures."""
    shares = [trials // CHAINS + (1 if chain < trials % CHAINS else 0) for chain in range(CHAINS)]
    with ThreadPoolExecutor(max_workers=CHAINS) as pool:
        futures = [
            pool.submit(
                _crash_chain,
                simulator,
                work / f"chain-{chain}",
                f"00008110-00AA00000000C{chain:03d}",
                share,
                seed * 1000 + chain,
            )
            for chain, share in enumerate(shares)
            if share
        ]
        tallies = [future.result() for future in futures]
    total = Tally()
    landed = 0
    for tally in tallies:
        landed += int(tally.notes[0].rsplit(" ", 1)[1])
        tally.notes.pop(0)
        total.add(tally)
    total.notes.insert(0, f"kills while files were still being copied: {landed}")
    return total


def _recovery_problems(
    outcome: str, service: ServiceProcess, archive: Path, check: ArchiveCheck
) -> list[str]:
    """What is wrong after a recovery run: its outcome, the invariants, partials left over."""
    problems: list[str] = []
    if outcome != "complete":
        problems.append(f"recovery run {outcome}: {service.tail(5)}")
    problems.extend(check.problems)
    # After a complete run every file is archived: a partial left over is a lost copy of a
    # file's worth of disk space, never cleaned up.
    leftovers = sorted((archive / WORKING_FOLDER_NAME).rglob("*.partial"))
    if leftovers:
        problems.append(f"{len(leftovers)} partial(s) left after a complete run")
    return problems


def _plug_until_kill_instant(
    simulator: SimulatorThread,
    service: ServiceProcess,
    udid: str,
    rng: random.Random,
    new_bytes: int,
    new_files: int,
) -> None:
    """Plug the phone in and return at a seeded random instant of the run: when it has served
    a random number of bytes of the new roll (7 times in 10), else right after a random n-th
    ``file_archived`` line of this run."""
    archived_before = len(service.named("file_archived", udid=udid))
    if rng.random() < 0.7:
        target = rng.randint(0, int(new_bytes * 1.05))
        simulator.plug(udid)
        wait_until(
            partial(_reached, simulator, service, udid, target),
            RUN_TIMEOUT_SECONDS,
            f"{target} bytes served",
        )
    else:
        nth = rng.randint(1, new_files)
        simulator.plug(udid)
        service.wait_for(
            "file_archived", count=archived_before + nth, udid=udid, timeout=RUN_TIMEOUT_SECONDS
        )


def _crash_chain(
    simulator: SimulatorThread, work: Path, udid: str, trials: int, seed: int
) -> Tally:
    """One chain of trials on its own phone, archive and state (``trials + 1`` processes)."""
    rng = random.Random(seed)
    work.mkdir(parents=True)
    # Each chain's service backs up only its own phone (the simulator serves both), and the
    # chains' photos differ, so content leaking from one chain into another is caught.
    config = write_config(
        work / "config.toml",
        work,
        schedule={"debounce_seconds": 0.05, "retry_initial_seconds": 0.2},
        filters={"include_devices": [udid]},
    )
    archive = work / "archive"
    state = work / "state" / "state.sqlite3"
    media_root = work / "phone"
    (media_root / "DCIM" / "100APPLE").mkdir(parents=True)
    simulator.add_phone(
        udid,
        media_root,
        plugged=False,
        faults=AfcFaults(throttle_bytes_per_second=THROTTLE_BYTES_PER_SECOND),
    )
    environment = service_environment(simulator.address)
    ever_on_phone: set[str] = set()
    known_problems: set[str] = set()
    tally = Tally()
    mid_copy_kills = 0
    for trial in range(trials + 1):
        service = ServiceProcess(["--config", str(config), "run"], environment)
        try:
            service.wait_for("service_ready")
            simulator.plug(udid)
            finished = service.wait_for("backup_finished", udid=udid, timeout=RUN_TIMEOUT_SECONDS)
            check = check_archive(archive, state, ever_on_phone, udid)
            problems = _recovery_problems(finished[0]["outcome"], service, archive, check)
            if trial > 0:
                tally.trials += 1
                tally.files_checked += check.files
                tally.bytes_checked += check.bytes
                # A chain keeps its archive: a problem an earlier trial caused is seen again by
                # every later check. Count a trial as failed for the problems it added.
                new_problems = [problem for problem in problems if problem not in known_problems]
                known_problems.update(problems)
                if new_problems:
                    tally.failures += 1
                    tally.notes.append(f"crash trial {trial - 1} (seed {seed}): {new_problems}")
            if trial == trials:
                break
            simulator.unplug(udid)
            service.wait_for("phone_detached", udid=udid)
            # New photos; every fifth trial the same names again with other bytes and times.
            rollover = trial % 5 == 4
            roll = media.make_camera_roll(
                media_root,
                first_number=1 if rollover else 10 * trial + 1,
                file_time=datetime(2024, 3, 9, tzinfo=UTC) + timedelta(days=trial),
                variant=f"{udid}/trial-{trial}",
            )
            for item in roll.files:
                ever_on_phone.add(hash_file(item.host_path))
            new_bytes = roll.total_bytes
            simulator.reset_counts(udid)
            _plug_until_kill_instant(simulator, service, udid, rng, new_bytes, len(roll.files))
            if _served(simulator, udid) < new_bytes:
                mid_copy_kills += 1
        except AssertionError as error:
            # A wait ran out (a hung run, a missed attach): a failed trial; keep the process's
            # whole log for the post-mortem and go on with a new process.
            kept = work / f"trial-{trial}-events.jsonl"
            _keep_events(kept, service, udid)
            tally.failures += 1
            summary = str(error).split(";", 1)[0]
            tally.notes.append(f"crash trial {trial} (seed {seed}): {summary}; log in {kept}")
        finally:
            service.kill()
        simulator.unplug(udid)
    tally.notes.insert(0, f"kills while files were still being copied: {mid_copy_kills}")
    return tally
