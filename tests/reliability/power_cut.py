"""Power-cut campaign: the archive and the state on a disk that forgets what was not synced.

A kill -9 loses nothing the kernel already holds, so the crash campaign cannot see a missing
``fsync``. Here the archive and the state folder live on the power-cut filesystem
(:mod:`tests.reliability.power_cut_disk`). An episode starts on a new phone and disk where
rollkeeper was started once and shut down cleanly (its state exists, durable), then each trial:

1. start ``rollkeeper run`` and plug the phone in: this run finishes what the last cut left;
   when it ends, check every invariant of a finished backup (:func:`check_archive`), except
   that a file whose record a cut took back may stay unrecorded once the phone no longer has
   it (its record cannot be rebuilt from the phone; see docs/reliability.md);
2. unplug; add a new camera roll with a large video (every fifth trial the same names come
   back with other content); plug in again;
3. cut the power at a seeded random instant (a random number of bytes of the new roll served,
   or right after a random n-th ``file_archived``), half of the time just after the state
   folder was written back on its own (its records durable, the newest archive files not);
   then kill the process, unmount and mount again: only what was durable is left;
4. check what the cut left (:func:`check_after_cut`): every file the database records as
   archived is under its final name with its recorded hash; no final name holds a partial or
   foreign file; no ``.partial`` outside ``.rollkeeper/``; the database opens and passes
   ``PRAGMA integrity_check``.

Every other episode runs on a disk that refuses hard links, as exFAT does, so rollkeeper's
check-then-rename placement is cut into too. Figures: trials, failures, files and bytes
checked; how many cuts landed while files were still being copied and took back writes not
yet synced; how much the runs after the cuts read from the phone again.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rollkeeper.archive.locations import WORKING_FOLDER_NAME
from rollkeeper.importer.hashing import hash_file
from rollkeeper.simulator import SimulatorThread
from rollkeeper.simulator.phone import AfcFaults
from rollkeeper.store import ARCHIVED, StateStore
from tests import media
from tests.reliability.crash import (
    RUN_TIMEOUT_SECONDS,
    _keep_events,
    _plug_until_kill_instant,
    _served,
)
from tests.reliability.harness import (
    Tally,
    archive_files,
    check_archive,
    phone_files,
    stray_partials,
)
from tests.reliability.power_cut_disk import PowerCutDisk, sync_folder
from tests.service_process import ServiceProcess, service_environment, write_config

#: Bytes per second the phone serves: a roll with its video takes about a second.
THROTTLE_BYTES_PER_SECOND = 6e6
#: The large video of every roll: more than one 4 MiB read, so cuts land inside it.
VIDEO_BYTES = 5 * 1024 * 1024
#: Independent chains of trials side by side (a phone, a disk, an archive, a service each).
CHAINS = 2
#: Trials on one phone and disk before a chain starts again with new ones.
EPISODE_TRIALS = 6
#: Share of cuts just before which the state database's files are written back (durable
#: records, not yet durable archive files: the ordering the record-after-fsync rule holds).
WRITE_BACK_STATE_SHARE = 0.5
#: The test-only shim that makes rollkeeper's fsync of a finished ``.partial`` a no-op (put
#: it on a service's PYTHONPATH through ``extra_environment``): the campaign must catch that.
FSYNC_REMOVED_SHIM = Path(__file__).with_name("fsync_removed")
#: What a cut left when a final name holds bytes that are not a whole phone file.
PARTIAL_UNDER_FINAL_NAME = "a final name holds a partial or foreign file"
#: How :func:`check_archive` words a file on disk that no record vouches for.
UNRECORDED = "on disk but not in the database: "


@dataclass
class CutFigures:
    """What the cuts of a campaign hit (the notes of its :class:`Tally`)."""

    mid_copy: int = 0
    took_back: int = 0
    state_written_back: int = 0
    without_hard_links: int = 0
    unrecorded_after_rollover: int = 0
    #: Bytes the runs after the cuts read from the phone, and bytes of new photos and videos.
    bytes_read: int = 0
    bytes_new: int = 0

    def add(self, other: CutFigures) -> None:
        self.mid_copy += other.mid_copy
        self.took_back += other.took_back
        self.state_written_back += other.state_written_back
        self.without_hard_links += other.without_hard_links
        self.unrecorded_after_rollover += other.unrecorded_after_rollover
        self.bytes_read += other.bytes_read
        self.bytes_new += other.bytes_new

    def notes(self) -> list[str]:
        ratio = self.bytes_read / self.bytes_new if self.bytes_new else 0.0
        return [
            f"cuts while files were still being copied: {self.mid_copy}",
            f"cuts that took back writes not yet synced: {self.took_back}",
            "trials on a disk without hard links (rollkeeper checks the name, then renames, "
            f"as on exFAT): {self.without_hard_links}",
            "cuts just after the state database's pages were written back (its records "
            f"durable, the new archive files not): {self.state_written_back}",
            f"bytes the runs after the cuts read from the phone: {ratio:.1f} per new byte "
            "(records taken back by a cut are rebuilt by copying the file again)",
            "archived files left unrecorded (their record taken back by a cut, then the phone "
            f"dropped the file): {self.unrecorded_after_rollover}",
        ]


def check_after_cut(archive: Path, state: Path, ever_on_phone: set[str]) -> list[str]:
    """What must hold right after a cut, before any run: what is recorded is really there."""
    problems: list[str] = []
    on_disk = archive_files(archive)
    for relative, digest in sorted(on_disk.items()):
        if digest not in ever_on_phone:
            problems.append(f"after the cut {PARTIAL_UNDER_FINAL_NAME}: {relative}")
    strays = stray_partials(archive)
    if strays:
        problems.append(f"after the cut, .partial outside {WORKING_FOLDER_NAME}/: {strays[:5]}")
    if not state.exists():
        return problems  # nothing recorded, nothing to vouch for: the next run rebuilds it
    store = StateStore.open(state, read_only=True)
    try:
        verdict = store.integrity_check()
        if verdict != "ok":
            problems.append(f"after the cut, integrity_check: {verdict}")
        for record in store.archive_entries():
            if on_disk.get(record.relative_path) != record.content_hash:
                problems.append(f"after the cut, recorded but not on disk: {record.relative_path}")
        for entry in store.manifest():
            found = on_disk.get(entry.archive_path or "")
            if entry.status == ARCHIVED and found != entry.content_hash:
                problems.append(f"after the cut, archived without its file: {entry.phone_path}")
    finally:
        store.close()
    return problems


def check_finished(
    archive: Path, state: Path, ever_on_phone: set[str], media_root: Path, udid: str
) -> tuple[list[str], int, int, int]:
    """Every invariant of a finished backup; files unrecorded since a cut are counted apart.

    Such a file (its record taken back by a cut, its phone file since replaced) cannot be
    vouched for again from the phone; it is still complete, stored once and the phone's.
    Returns (problems, files, bytes, unrecorded files the phone no longer has).
    """
    check = check_archive(archive, state, ever_on_phone, udid)
    on_phone_now = set(phone_files(media_root).values())
    problems: list[str] = []
    forgiven = 0
    for problem in check.problems:
        relative = problem.removeprefix(UNRECORDED)
        if relative != problem and hash_file(archive / relative) not in on_phone_now:
            forgiven += 1
            continue
        problems.append(problem)
    return problems, check.files, check.bytes, forgiven


def _install(config: Path, environment: dict[str, str], disk: PowerCutDisk) -> None:
    """rollkeeper started once before and the machine shut down cleanly since.

    Its state folder and database then exist, durable. Their very first creation is not what
    the trials cut into: rollkeeper does not sync the folder that gets its new state folder,
    so a cut before anything else syncs it loses the database (docs/reliability.md).
    """
    service = ServiceProcess(["--config", str(config), "run"], environment)
    try:
        service.wait_for("service_ready")
    finally:
        code = service.terminate()
    if code != 0:
        raise AssertionError(f"the first start exited {code}: {service.tail(5)}")
    disk.remount()


def power_cut_campaign(
    simulator: SimulatorThread,
    work: Path,
    trials: int,
    seed: int,
    extra_environment: dict[str, str] | None = None,
) -> tuple[Tally, CutFigures]:
    """Run ``trials`` power-cut trials in :data:`CHAINS` parallel chains of episodes."""
    shares = [trials // CHAINS + (1 if chain < trials % CHAINS else 0) for chain in range(CHAINS)]
    with ThreadPoolExecutor(max_workers=CHAINS) as pool:
        futures = [
            pool.submit(
                _power_cut_chain,
                simulator,
                work / f"chain-{chain}",
                chain,
                share,
                seed * 1000 + chain,
                extra_environment or {},
            )
            for chain, share in enumerate(shares)
            if share
        ]
        results = [future.result() for future in futures]
    total, figures = Tally(), CutFigures()
    for tally, cut_figures in results:
        total.add(tally)
        figures.add(cut_figures)
    return total, figures


def _power_cut_chain(
    simulator: SimulatorThread,
    work: Path,
    chain: int,
    trials: int,
    seed: int,
    extra_environment: dict[str, str],
) -> tuple[Tally, CutFigures]:
    """Episodes of at most :data:`EPISODE_TRIALS` trials, each on a new phone and disk.

    A cut takes back every state record since the last WAL checkpoint, and the next run
    copies those files again (see docs/reliability.md); a new phone now and then keeps the
    phone small, so that each run stays short however many trials are asked for.
    """
    rng = random.Random(seed)
    tally, figures = Tally(), CutFigures()
    episode = 0
    while trials > 0:
        share = min(EPISODE_TRIALS, trials)
        trials -= share
        udid = f"00008110-{chain:02X}CC{episode:012X}"
        # Every other episode on a disk without hard links: rollkeeper's path for exFAT.
        hard_links = (episode + chain) % 2 == 0
        episode_tally, episode_figures = _episode(
            simulator, work / f"episode-{episode}", udid, share, rng, extra_environment, hard_links
        )
        if not hard_links:
            episode_figures.without_hard_links = episode_tally.trials
        tally.add(episode_tally)
        figures.add(episode_figures)
        episode += 1
    return tally, figures


def _cut_power(
    disk: PowerCutDisk,
    simulator: SimulatorThread,
    udid: str,
    rng: random.Random,
    figures: CutFigures,
    new_bytes: int,
) -> None:
    """Cut the power now (sometimes just after the state's pages were written back), and count
    what the cut hit."""
    if rng.random() < WRITE_BACK_STATE_SHARE:
        # The kernel wrote the database's pages back on its own just now: every record
        # committed so far survives, so each must vouch for a durable file.
        disk.write_back("state")
        figures.state_written_back += 1
    report = disk.cut()
    if _served(simulator, udid) < new_bytes:
        figures.mid_copy += 1
    if report != "cut files=0 folders=0":
        figures.took_back += 1


def _episode(
    simulator: SimulatorThread,
    work: Path,
    udid: str,
    trials: int,
    rng: random.Random,
    extra_environment: dict[str, str],
    hard_links: bool,
) -> tuple[Tally, CutFigures]:
    """``trials`` cuts on one phone and disk (``trials + 1`` service processes)."""
    work.mkdir(parents=True)
    media_root = work / "phone"
    (media_root / "DCIM" / "100APPLE").mkdir(parents=True)
    simulator.add_phone(
        udid,
        media_root,
        plugged=False,
        faults=AfcFaults(throttle_bytes_per_second=THROTTLE_BYTES_PER_SECOND),
    )
    environment = service_environment(simulator.address, **extra_environment)
    tally, figures = Tally(), CutFigures()
    with PowerCutDisk(work, hard_links=hard_links) as disk:
        disk_root = disk.mount_point
        config = write_config(
            work / "config.toml",
            disk_root,
            schedule={"debounce_seconds": 0.05, "retry_initial_seconds": 0.2},
            filters={"include_devices": [udid]},
            device={"pairing_dir": str(work / "pairing")},
        )
        sync_folder(disk_root)
        _install(config, environment, disk)
        archive = disk_root / "archive"
        state = disk_root / "state" / "state.sqlite3"
        ever_on_phone: set[str] = set()
        known_problems: set[str] = set()
        pending: list[str] = []  # problems the last cut left, judged with the next run's
        for trial in range(trials + 1):
            service = ServiceProcess(["--config", str(config), "run"], environment)
            cut = False
            try:
                service.wait_for("service_ready")
                simulator.plug(udid)
                finished = service.wait_for(
                    "backup_finished", udid=udid, timeout=RUN_TIMEOUT_SECONDS
                )
                figures.bytes_read += int(finished[0].get("bytes_copied", 0))
                problems = list(pending)
                pending.clear()
                if finished[0]["outcome"] != "complete":
                    problems.append(f"recovery run {finished[0]['outcome']}: {service.tail(5)}")
                found, files, size, forgiven = check_finished(
                    archive, state, ever_on_phone, media_root, udid
                )
                problems.extend(found)
                leftovers = sorted((archive / WORKING_FOLDER_NAME).rglob("*.partial"))
                if leftovers:
                    problems.append(f"{len(leftovers)} partial(s) left after a complete run")
                if trial > 0:
                    tally.trials += 1
                    tally.files_checked += files
                    tally.bytes_checked += size
                    figures.unrecorded_after_rollover = forgiven
                    new_problems = [item for item in problems if item not in known_problems]
                    known_problems.update(problems)
                    if new_problems:
                        tally.failures += 1
                        tally.notes.append(f"power-cut trial {trial - 1} ({udid}): {new_problems}")
                if trial == trials:
                    break
                simulator.unplug(udid)
                service.wait_for("phone_detached", udid=udid)
                roll = media.make_camera_roll(
                    media_root,
                    first_number=1 if trial % 5 == 4 else 10 * trial + 1,  # a rollover
                    big_video_bytes=VIDEO_BYTES,
                    file_time=datetime(2024, 3, 9, tzinfo=UTC) + timedelta(days=trial),
                    variant=f"{udid}/trial-{trial}",
                )
                for item in roll.files:
                    ever_on_phone.add(hash_file(item.host_path))
                figures.bytes_new += roll.total_bytes
                simulator.reset_counts(udid)
                _plug_until_kill_instant(
                    simulator, service, udid, rng, roll.total_bytes, len(roll.files)
                )
                _cut_power(disk, simulator, udid, rng, figures, roll.total_bytes)
                cut = True
            except AssertionError as error:
                kept = work / f"trial-{trial}-events.jsonl"
                _keep_events(kept, service, udid)
                tally.failures += 1
                summary = str(error).split(";", 1)[0]
                tally.notes.append(f"power-cut trial {trial} ({udid}): {summary}; log in {kept}")
            finally:
                service.kill()
            simulator.unplug(udid)
            if cut:
                disk.remount()
                pending.extend(check_after_cut(archive, state, ever_on_phone))
    return tally, figures
