"""``rollkeeper simulate``: a simulated iPhone to try rollkeeper (and test it) without a phone.

Serving: ``rollkeeper simulate --root DIR`` starts a simulated usbmuxd with one phone whose media
folder is DIR, prints the ``export USBMUXD_SOCKET_ADDRESS=...`` line once it listens, and runs
until SIGINT/SIGTERM. Controlling: ``rollkeeper simulate --control PATH unplug`` (or plug, lock,
unlock, status) talks to a running simulator through its control socket; SIGUSR1 unplugs and
SIGUSR2 plugs in every phone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_UDID = "00008120-001A2B3C4D5E6F70"
DEFAULT_NAME = "Simulated iPhone"

DESCRIPTION = """\
Run a simulated iPhone that pymobiledevice3, libimobiledevice and rollkeeper talk to as if a real
phone were plugged in: a usbmuxd, lockdownd (pairing, TLS sessions) and an AFC server that serves
DIR as the phone's media folder (put photos under DIR/DCIM/100APPLE/).

It prints the line to paste into the shell where the client runs, then serves until Ctrl-C:

  $ rollkeeper simulate --root ~/fake-phone --socket /tmp/sim/usbmuxd
  export USBMUXD_SOCKET_ADDRESS=/tmp/sim/usbmuxd
  # libimobiledevice: export USBMUXD_SOCKET_ADDRESS=UNIX:/tmp/sim/usbmuxd
  # control: rollkeeper simulate --control /tmp/sim/usbmuxd.control unplug|plug|lock|unlock|status

From another shell, pull the cable or lock the phone:

  $ rollkeeper simulate --control /tmp/sim/usbmuxd.control unplug
  $ kill -USR1 <pid>      # unplug every phone;  kill -USR2 <pid> plugs them back in

The control socket takes JSON lines ({"command": "unplug", "udid": "..."}); see
docs/simulator.md.
"""


def register(subparsers: Any) -> None:
    """Add the ``simulate`` command to the ``rollkeeper`` parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="run a simulated iPhone (usbmuxd + lockdownd + AFC) for trying and testing",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "action",
        nargs="?",
        choices=("plug", "unplug", "lock", "unlock", "restart", "status"),
        help="with --control: what to do to a running simulator (default: serve a new one)",
    )
    parser.add_argument(
        "target_udid",
        nargs="?",
        metavar="UDID",
        help="with an action: the phone to act on (default: every phone)",
    )
    parser.add_argument(
        "--root", type=Path, metavar="DIR", help="the folder served as the phone's media folder"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--socket", type=Path, metavar="PATH", help="serve usbmuxd on this UNIX socket"
    )
    where.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        help="serve usbmuxd on this TCP address; port 0 picks a free one (the default is "
        "127.0.0.1:0)",
    )
    parser.add_argument(
        "--control",
        type=Path,
        metavar="PATH",
        help="the control socket: where to create it when serving (default: next to --socket, "
        "else in a new temporary folder), where to find it with an action",
    )
    parser.add_argument(
        "--udid", help=f"the phone's UDID (default: the phone profile's, else {DEFAULT_UDID})"
    )
    parser.add_argument("--name", default=DEFAULT_NAME, help=f"the phone's name ({DEFAULT_NAME})")
    parser.add_argument("--unplugged", action="store_true", help="start with the phone unplugged")
    parser.add_argument(
        "--trust",
        choices=("paired", "accept", "deny"),
        default="paired",
        help="paired: already trusts this computer (default); accept: shows 'Trust This "
        "Computer?' and accepts; deny: the user taps Don't Trust",
    )
    parser.add_argument(
        "--pending-polls",
        type=int,
        default=0,
        metavar="N",
        help="with --trust accept/deny: answer N pairing requests 'dialog pending' first",
    )
    parser.add_argument("--locked", action="store_true", help="start with the phone locked")
    parser.add_argument(
        "--locked-for",
        type=float,
        metavar="SECONDS",
        help="start locked since this long: 3600 or more is USB Restricted Mode (every "
        "connection refused until unlocked)",
    )
    parser.add_argument(
        "--restarted",
        action="store_true",
        help="the phone restarted and was not unlocked since: sessions are refused until unlock",
    )
    parser.add_argument(
        "--trust-prompt-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --trust accept/deny: the Trust dialog appears this long after plug-in",
    )
    parser.add_argument(
        "--usbmuxd-profile",
        choices=("generic", "linux-usbmuxd", "macos-usbmuxd"),
        default="generic",
        help="which usbmuxd build to imitate (docs/simulator.md, 'Profiles')",
    )
    parser.add_argument(
        "--phone-profile",
        choices=("iphone-ios15", "iphone-ios18", "iphone-ios26"),
        help="which phone generation to be (model, iOS version, UDID shape)",
    )
    parser.add_argument(
        "--throttle-mbps",
        type=float,
        metavar="X",
        help="limit AFC reads to X megabytes (10^6 bytes) per second: 35 is like USB 2",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (address, control socket, phones) instead of shell lines",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve a simulator, or send an action to a running one."""
    if args.action is not None:
        return _send_action(args)
    problem = _serve_usage_problem(args)
    if problem is not None:
        return _usage_error(problem)
    tcp: tuple[str, int] | None = None
    if args.tcp is not None:
        from rollkeeper.simulator.simulator import parse_tcp_address

        try:
            tcp = parse_tcp_address(args.tcp)
        except ValueError as error:
            return _usage_error(f"--tcp: {error}")
    _log_to_stderr()
    try:
        return asyncio.run(_serve(args, tcp))
    except OSError as error:
        print(f"rollkeeper simulate: {error}", file=sys.stderr)
        return 1


def _serve_usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments of serving (the first problem), or None."""
    if args.target_udid is not None:
        return "a UDID only goes with an action (plug, unplug, lock, unlock, restart, status)"
    if args.root is None:
        return "--root DIR is required to serve (the phone's media folder)"
    if not args.root.is_dir():
        return f"--root {args.root}: not a folder"
    if args.pending_polls < 0:
        return "--pending-polls must be 0 or more"
    if args.throttle_mbps is not None and args.throttle_mbps <= 0:
        return "--throttle-mbps must be more than 0"
    if args.trust_prompt_delay < 0 or (args.locked_for is not None and args.locked_for < 0):
        return "--trust-prompt-delay and --locked-for must be 0 or more"
    return None


def _usage_error(message: str) -> int:
    print(f"rollkeeper simulate: {message}", file=sys.stderr)
    return 2


def _log_to_stderr() -> None:
    """Keep stdout for the address line: scripts read it."""
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))


def _send_action(args: argparse.Namespace) -> int:
    from rollkeeper.simulator.control import ControlError, send_command

    if args.control is None:
        return _usage_error(
            f"{args.action} needs --control PATH (printed when the simulator starts)"
        )
    try:
        reply = send_command(args.control, args.action, args.target_udid)
    except ControlError as error:
        print(f"rollkeeper simulate: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(reply))
    elif not reply.get("ok"):
        print(f"rollkeeper simulate: {reply.get('error')}", file=sys.stderr)
    else:
        for phone in reply.get("phones", []):
            plugged = "plugged in" if phone["plugged"] else "unplugged"
            locked = "locked" if phone["locked"] else "unlocked"
            print(f"{phone['udid']} {phone['name']!r}: {plugged}, {locked}, trust {phone['trust']}")
    return 0 if reply.get("ok") else 1


async def _serve(args: argparse.Namespace, tcp: tuple[str, int] | None) -> int:
    from rollkeeper.simulator.control import ControlServer, apply_command
    from rollkeeper.simulator.lockdown_values import phone_profile
    from rollkeeper.simulator.phone import AfcFaults, TrustPolicy
    from rollkeeper.simulator.simulator import Simulator

    temporary_folder: Path | None = None
    control_path: Path = args.control
    if control_path is None:
        if args.socket is not None:
            control_path = args.socket.with_name(args.socket.name + ".control")
        else:
            temporary_folder = Path(tempfile.mkdtemp(prefix="rollkeeper-simulate-"))
            control_path = temporary_folder / "control"
    faults = AfcFaults()
    if args.throttle_mbps is not None:
        faults.throttle_bytes_per_second = args.throttle_mbps * 1e6
    simulator = Simulator(socket_path=args.socket, tcp=tcp, usbmuxd_profile=args.usbmuxd_profile)
    control = ControlServer(simulator, control_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    identity = (
        phone_profile(args.phone_profile, udid=args.udid, name=args.name)
        if args.phone_profile is not None
        else None
    )
    try:
        await simulator.start()
        await simulator.add_phone(
            identity.udid if identity is not None else args.udid or DEFAULT_UDID,
            args.root.resolve(),
            name=args.name,
            plugged=not args.unplugged,
            locked=args.locked or args.locked_for is not None,
            locked_for_seconds=args.locked_for or 0.0,
            restarted=args.restarted,
            trust=TrustPolicy(args.trust),
            pending_polls=args.pending_polls,
            trust_prompt_delay_seconds=args.trust_prompt_delay,
            identity=identity,
            faults=faults,
        )
        await control.start()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, apply_command, simulator, "unplug", None)
        loop.add_signal_handler(signal.SIGUSR2, apply_command, simulator, "plug", None)
        _announce(args, simulator, control_path)
        await stop.wait()
    finally:
        for signal_number in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
            loop.remove_signal_handler(signal_number)
        await control.stop()
        await simulator.stop()
        if temporary_folder is not None:
            shutil.rmtree(temporary_folder, ignore_errors=True)
    return 0


def _announce(args: argparse.Namespace, simulator: Any, control_path: Path) -> None:
    """Print where the simulator listens, flushed: a parent process waits for this line."""
    if args.json:
        print(
            json.dumps(
                {
                    "usbmuxd_socket_address": simulator.address,
                    "libimobiledevice_socket_address": simulator.libimobiledevice_address,
                    "control": str(control_path),
                    "phones": simulator.describe(),
                }
            ),
            flush=True,
        )
        return
    print(f"export USBMUXD_SOCKET_ADDRESS={simulator.address}")
    libimobiledevice_address = simulator.libimobiledevice_address
    if libimobiledevice_address != simulator.address:
        print(f"# libimobiledevice: export USBMUXD_SOCKET_ADDRESS={libimobiledevice_address}")
    print(f"# control: rollkeeper simulate --control {control_path} unplug|plug|lock|unlock|status")
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
