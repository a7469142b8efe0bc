"""What every benchmark shares: the machine's description, a simulator in its own process,
measured child processes (wall time, CPU seconds, peak RSS), alternating paired runs, tables
and the results file.

Every comparison is a ratio of two sides measured in the same run, alternating A, B, A, B...
so that a slow moment of the machine (page cache pressure, another process) falls on both
sides; the figure reported is the median of the per-round ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
VENV_BIN = Path(sys.executable).parent
#: dcimport pins pymobiledevice3 9.x: it lives in its own venv (``make bench-venvs``).
DCIMPORT_VENV = REPO / "bench" / ".venvs" / "dcimport"
UDID = "00008120-001A2B3C4D5E6F70"
MB = 1_000_000
MIB = 1 << 20


# -- the machine --------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory_bytes() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _filesystem(path: Path) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        output = subprocess.run(
            ["df", "--output=fstype,source", str(path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.split()
        return " ".join(output[2:])
    return "unknown"


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _git_revision() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    return "unknown"


def dcimport_versions() -> dict[str, str]:
    """dcimport's version and the pymobiledevice3 it pins, from its own venv."""
    python = DCIMPORT_VENV / "bin" / "python"
    if not python.exists():
        return {"dcimport": "not installed"}
    script = (
        "from importlib.metadata import version as v;print(v('dcimport'), v('pymobiledevice3'))"
    )
    try:
        out = subprocess.run(
            [str(python), "-c", script], capture_output=True, text=True, timeout=30, check=True
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return {"dcimport": "broken venv"}
    return {"dcimport": out[0], "dcimport_pymobiledevice3": out[1]}


def machine(work: Path) -> dict[str, Any]:
    """The machine, the software and the moment: stored beside every figure."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "filesystem": _filesystem(work),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {
            "rollkeeper": f"{_package_version('rollkeeper')} ({_git_revision()})",
            "pymobiledevice3": _package_version("pymobiledevice3"),
            "blake3": _package_version("blake3"),
            **dcimport_versions(),
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# -- figures ------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


#: One side of a paired comparison: given the round number, run once and return its figures.
Side = Callable[[int], dict[str, Any]]


def paired_rounds(rounds: int, sides: Mapping[str, Side]) -> dict[str, list[dict[str, Any]]]:
    """Run every side once per round, alternating which goes first; collect each run's figures."""
    names = list(sides)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_number in range(rounds):
        order = names if round_number % 2 == 0 else list(reversed(names))
        for name in order:
            figures = sides[name](round_number)
            print(f"  round {round_number + 1}/{rounds} {name}: {_short(figures)}", flush=True)
            results[name].append(figures)
    return results


def _short(figures: dict[str, Any]) -> str:
    keys: tuple[str, ...] = ("seconds", "mb_per_second", "cpu_seconds", "peak_rss_mb")
    keys += ("afc_requests", "cpu_seconds_per_gb", "simulator_cpu_seconds_per_gb")
    return ", ".join(f"{key}={figures[key]}" for key in keys if key in figures)


def ratio_of_medians(
    runs: dict[str, list[dict[str, Any]]], key: str, numerator: str, denominator: str
) -> float:
    """Median over rounds of numerator[key] / denominator[key] (each round's pair)."""
    ratios = [
        a[key] / b[key]
        for a, b in zip(runs[numerator], runs[denominator], strict=False)
        if b.get(key)
    ]
    return round(median(ratios), 3)


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table on stdout."""
    cells = [[str(item) for item in header]] + [[_cell(item) for item in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print("  " + "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  " + "  ".join("-" * width for width in widths))
    sys.stdout.flush()


def _cell(item: Any) -> str:
    if isinstance(item, float):
        return f"{item:.3g}" if abs(item) < 1000 else f"{item:.0f}"
    return str(item)


def write_results(name: str, work: Path, parameters: dict[str, Any], figures: Any) -> Path:
    """bench/results/<name>-<UTC time>.json and <name>-latest.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "parameters": parameters,
        "machine": machine(work),
        "figures": figures,
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    text = json.dumps(document, indent=2, default=str)
    path.write_text(text)
    (RESULTS / f"{name}-latest.json").write_text(text)
    print(f"  -> {path.relative_to(REPO)}")
    return path


# -- measured child processes ---------------------------------------------------------------------


@dataclass
class Measured:
    """How a child process went: wall seconds, CPU seconds, peak RSS, exit code, output."""

    seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """The last line of stdout parsed as JSON (the bench clients print one object)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else None


def run_measured(
    command: Sequence[str],
    environment: dict[str, str],
    timeout: float = 3600,
    cwd: Path | None = None,
) -> Measured:
    """Run ``command`` to the end; wall time, user+system CPU and peak RSS from wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=environment,
            cwd=cwd,
        )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            # wait4 has no timeout: poll the child's exit with a bounded wait on its pidfd.
            _wait_exit(process.pid, 0.05)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Measured(
            seconds=seconds,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            peak_rss_bytes=usage.ru_maxrss * 1024,
            returncode=process.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def _wait_exit(pid: int, seconds: float) -> None:
    try:
        descriptor = os.pidfd_open(pid)
    except (AttributeError, OSError):
        select.select([], [], [], seconds)
        return
    try:
        select.select([descriptor], [], [], seconds)
    finally:
        os.close(descriptor)


def child_cpu_seconds() -> float:
    """CPU seconds of waited-for children so far (for processes not run by run_measured)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def require_ok(result: Measured, what: str) -> None:
    """Stop the benchmark with the child's own words when it failed."""
    if result.returncode != 0:
        raise RuntimeError(
            f"{what} exited {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n"
            f"--- stderr\n{result.stderr[-3000:]}"
        )


def client_environment(usbmux_address: str) -> dict[str, str]:
    """This environment, pointed at the simulator, without rollkeeper overrides."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ROLLKEEPER_") and key != "NOTIFY_SOCKET"
    }
    environment["USBMUXD_SOCKET_ADDRESS"] = usbmux_address
    environment["PYTHONPATH"] = str(REPO)
    return environment


# -- the simulator in its own process -------------------------------------------------------------


class SimulatorProcess:
    """A simulated phone served by another process, so client and server do not share a GIL.

    ``counting=False`` runs ``rollkeeper simulate`` itself. ``counting=True`` runs
    :mod:`bench.sim_server` (the same ``Simulator`` class, plus a way to read and reset the
    AFC request counters, which the control socket does not offer).
    """

    def __init__(
        self,
        root: Path,
        *,
        throttle_mbps: float | None = None,
        counting: bool = False,
        key_dir: Path | None = None,
    ) -> None:
        self.root = root
        self.throttle_mbps = throttle_mbps
        self.counting = counting
        self.folder = Path(tempfile.mkdtemp(prefix="rk-bench-", dir="/tmp"))
        self.socket = self.folder / "usbmuxd"
        self.key_dir = key_dir or self.folder / "keys"
        self.process: subprocess.Popen[bytes] | None = None
        self.address = str(self.socket)
        self.cpu_seconds = 0.0

    def __enter__(self) -> SimulatorProcess:
        environment = dict(os.environ)
        environment["ROLLKEEPER_SIMULATOR_KEY_DIR"] = str(self.key_dir)
        environment["PYTHONPATH"] = str(REPO)
        if self.counting:
            command = [sys.executable, "-m", "bench.sim_server", "--root", str(self.root)]
            command += ["--socket", str(self.socket)]
        else:
            command = [str(VENV_BIN / "rollkeeper"), "simulate", "--root", str(self.root)]
            command += ["--socket", str(self.socket), "--json"]
        if self.throttle_mbps:
            command += ["--throttle-mbps", str(self.throttle_mbps)]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=environment,
            cwd=REPO,
        )
        line = self._read_line(60)
        self.address = json.loads(line)["usbmuxd_socket_address"]
        return self

    def _read_line(self, timeout: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError("the simulator did not answer")
        line = self.process.stdout.readline().decode()
        if not line:
            raise RuntimeError("the simulator exited")
        return line

    def command(self, text: str) -> Any:
        """Send a line to bench.sim_server (counts, reset) and read its JSON answer."""
        assert self.counting and self.process is not None and self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()
        return json.loads(self._read_line(60))

    def counts(self) -> dict[str, int]:
        """AFC requests by operation since the last reset."""
        answer: dict[str, int] = self.command("counts")
        return answer

    def reset(self) -> None:
        """Zero the AFC request counters."""
        self.command("reset")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                _, _, usage = os.wait4(self.process.pid, 0)
                self.cpu_seconds = usage.ru_utime + usage.ru_stime
            except ChildProcessError:
                pass
            self.process.returncode = 0
        shutil.rmtree(self.folder, ignore_errors=True)


# -- rollkeeper's side ----------------------------------------------------------------------------


@dataclass
class RollkeeperSetup:
    """A config file and the folders it names (archive, state, pairing), under ``base``."""

    base: Path
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.base / "config.toml"

    @property
    def archive(self) -> Path:
        return self.base / "archive"

    @property
    def state(self) -> Path:
        return self.base / "state" / "state.sqlite3"

    def write(self) -> RollkeeperSetup:
        """Write the config (JSON logs at warning: the figures are not about logging)."""
        import tomli_w

        config: dict[str, dict[str, Any]] = {
            "archive": {"path": str(self.archive)},
            "state": {"path": str(self.state)},
            "device": {"pairing_dir": str(self.base / "pairing")},
            "schedule": {"debounce_seconds": 0.2},
            "logging": {"format": "json", "level": "warning"},
        }
        for section, values in self.extra.items():
            config.setdefault(section, {}).update(values)
        self.base.mkdir(parents=True, exist_ok=True)
        self.archive.mkdir(exist_ok=True)
        self.config.write_text(tomli_w.dumps(config))
        return self

    def wipe(self) -> None:
        """Forget everything: an empty archive and no state (a first backup again)."""
        shutil.rmtree(self.archive, ignore_errors=True)
        shutil.rmtree(self.state.parent, ignore_errors=True)
        self.archive.mkdir(parents=True)


def rollkeeper_command(setup: RollkeeperSetup, *arguments: str) -> list[str]:
    """``rollkeeper --config C ARGS`` from this venv."""
    return [str(VENV_BIN / "rollkeeper"), "--config", str(setup.config), *arguments]


def tree_bytes(root: Path) -> tuple[int, int]:
    """(files, bytes) under ``root`` (not following links), rollkeeper's working folder
    (its archive marker, partial files) left out: it is not copied content."""
    files = total = 0
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if name != ".rollkeeper"]
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
                files += 1
    return files, total


def drop_tree(path: Path) -> None:
    """Remove a copy between runs (each run starts from an empty destination)."""
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def work_folder(base: Path | None, name: str) -> Iterator[Path]:
    """A folder for one benchmark's phone trees and copies; kept if ``base`` was given."""
    if base is not None:
        folder = base / name
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    folder = Path(tempfile.mkdtemp(prefix=f"rk-bench-{name}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main_for(
    name: str,
    description: str | None,
    sizes: Mapping[str, object],
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace, Path], dict[str, Any]],
) -> int:
    """The command line every benchmark module shares: ``--size``, ``--work``, its own options;
    runs it in a work folder and writes its results JSON."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", choices=list(sizes), default="smoke")
    parser.add_argument("--work", type=Path, help="keep phone trees here between runs")
    add_arguments(parser)
    args = parser.parse_args()
    with work_folder(args.work, name) as work:
        write_results(name, work, vars(args), run(args, work))
    return 0
