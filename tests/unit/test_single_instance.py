"""The instance lock against a real second process: refused while held, free once it dies."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rollkeeper.host.single_instance import AlreadyRunningError, InstanceLock

# A second process that takes the lock, says so on stdout, then waits for stdin to close.
HOLDER_CODE = """
import sys
from pathlib import Path
from rollkeeper.host.single_instance import InstanceLock
lock = InstanceLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
sys.stdin.read()
"""

# A second process that only tries, and reports what happened.
CONTENDER_CODE = """
import sys
from pathlib import Path
from rollkeeper.host.single_instance import AlreadyRunningError, InstanceLock
try:
    InstanceLock(Path(sys.argv[1])).acquire()
except AlreadyRunningError as error:
    print(error)
    sys.exit(3)
print("acquired")
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A real process holding the lock on tmp_path/state.db.lock."""
    lock_path = tmp_path / "state.db.lock"
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER_CODE, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    # readline blocks until the holder has the lock: an event, not a guess at timing.
    assert process.stdout.readline().strip() == "locked"
    yield process, lock_path
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def test_a_second_holder_is_refused_with_the_file_and_pid(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    """While another process holds the lock, acquiring it raises AlreadyRunningError naming the lock
    file and the holder's pid."""
    process, lock_path = holder

    with pytest.raises(AlreadyRunningError) as refused:
        InstanceLock(lock_path).acquire()

    assert refused.value.holder_pid == process.pid
    assert refused.value.lock_path == lock_path
    assert str(lock_path) in str(refused.value)
    assert f"process {process.pid}" in str(refused.value)
    assert InstanceLock.holder_pid(lock_path) == process.pid
    assert InstanceLock.is_held(lock_path)


def test_a_third_process_is_refused_too(holder: tuple[subprocess.Popen[str], Path]) -> None:
    """A further process is refused too and says which process holds which file."""
    process, lock_path = holder

    contender = subprocess.run(
        [sys.executable, "-c", CONTENDER_CODE, str(lock_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert contender.returncode == 3
    assert f"process {process.pid} holds {lock_path}" in contender.stdout


def test_the_lock_is_free_after_the_holder_is_killed_hard(
    holder: tuple[subprocess.Popen[str], Path],
) -> None:
    """The lock is free at once after its holder is killed with SIGKILL, and can be taken."""
    process, lock_path = holder

    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    assert InstanceLock.holder_pid(lock_path) is None
    lock = InstanceLock(lock_path)
    lock.acquire()
    try:
        assert InstanceLock.holder_pid(lock_path) == os.getpid()
    finally:
        lock.release()


def test_the_lock_is_free_after_a_clean_exit(holder: tuple[subprocess.Popen[str], Path]) -> None:
    """The lock is free after its holder exits normally."""
    process, lock_path = holder

    assert process.stdin is not None
    process.stdin.close()  # the holder's read() returns and it exits normally
    assert process.wait(timeout=30) == 0

    assert not InstanceLock.is_held(lock_path)
    with InstanceLock(lock_path) as lock:
        assert lock.held


def test_release_lets_another_process_in(tmp_path: Path) -> None:
    """After release another process acquires the lock."""
    lock_path = tmp_path / "state.db.lock"
    lock = InstanceLock(lock_path)
    lock.acquire()
    lock.release()

    contender = subprocess.run(
        [sys.executable, "-c", CONTENDER_CODE, str(lock_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert contender.returncode == 0, contender.stdout
    assert contender.stdout.strip() == "acquired"


def test_lock_file_is_private_and_names_the_holder(tmp_path: Path) -> None:
    """The lock file is made 0600 and holds the holder's pid while held, and names nobody after
    release."""
    lock_path = tmp_path / "state.db.lock"
    lock_path.write_text("stale\n")
    lock_path.chmod(0o644)

    with InstanceLock(lock_path):
        assert stat.S_IMODE(lock_path.stat().st_mode) == 0o600
        assert lock_path.read_text() == f"{os.getpid()}\n"

    assert InstanceLock.holder_pid(lock_path) is None


def test_nobody_holds_a_lock_file_that_does_not_exist(tmp_path: Path) -> None:
    """A lock file that does not exist is held by nobody."""
    assert InstanceLock.holder_pid(tmp_path / "missing.lock") is None
    assert not InstanceLock.is_held(tmp_path / "missing.lock")


def test_a_child_process_does_not_inherit_the_lock(tmp_path: Path) -> None:
    """Hooks run as children; if they kept the lock, a restart would be refused."""
    lock_path = tmp_path / "state.db.lock"
    lock = InstanceLock(lock_path)
    lock.acquire()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; print('started', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        close_fds=False,
    )
    try:
        # Until the child has exec'd it shares every descriptor: wait for it to be running.
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        lock.release()
        assert not InstanceLock.is_held(lock_path)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
