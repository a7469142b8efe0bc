"""``rollkeeper web url`` and ``rollkeeper web token``: open the status page, or secure it.

``url`` prints the page's address from the config; with a token it is the ``/login`` link
that signs a browser in (open it once on each device; the page then keeps a cookie and drops
the token from the address). ``token`` prints a new random token to put in ``[web] token``.
Neither needs the service to run; neither changes anything. docs/web.md says the rest.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import Any, TextIO

DESCRIPTION = """\
The status page of `rollkeeper run` (off unless [web] enabled = true in the config) shows
whether each phone is backed up, the transfer under way with a progress bar, and the newest
photos. On an address other than 127.0.0.1 it needs a token ([web] token); the link that
`rollkeeper web url` prints carries it. docs/web.md has the details.
"""

#: Exit status when the config is unusable or the page is off.
EXIT_NOT_SERVED = 1


def new_token() -> str:
    """A fresh token: 24 random bytes as 32 URL-safe characters."""
    return secrets.token_urlsafe(24)


def run_url(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print the page's address (the login link when a token is set)."""
    from rollkeeper import bootstrap
    from rollkeeper.web.links import page_url

    output = sys.stdout if out is None else out
    errors = sys.stderr if err is None else err
    config = bootstrap.load_command_config(args.config, err=errors)
    if config is None:
        return EXIT_NOT_SERVED
    web = config.web
    if not web.enabled:
        print(
            "rollkeeper: the status page is off: set [web] enabled = true in the config and "
            "restart the service (see docs/web.md)",
            file=errors,
        )
        return EXIT_NOT_SERVED
    address = web.address
    if address.port == 0:
        print(
            "rollkeeper: [web] listen has port 0, so the service picks a port when it starts; "
            "its web_listening log event says which",
            file=errors,
        )
        return EXIT_NOT_SERVED
    print(page_url(address, address.port, web.token, args.host), file=output)
    if web.token:
        print(
            "This link carries the token: open it once on each device, and share it only "
            "with people who may see your photos.",
            file=errors,
        )
    return 0


def run_token(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print a new random token (nothing is written: paste it into ``[web] token``)."""
    print(new_token(), file=sys.stdout if out is None else out)
    return 0


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def register(subparsers: Any) -> None:
    """Add ``web`` and its sub-commands to the ``rollkeeper`` parser."""
    parser = subparsers.add_parser(
        "web",
        help="the status page: print its address (and login link), or a new token",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="web_action", metavar="ACTION")
    parser.set_defaults(handler=lambda args: _usage(parser))
    url = actions.add_parser(
        "url",
        help="print the page's address; with a token, the link that signs a browser in",
        description=(
            "Print the status page's address from the config. With [web] token set it is the "
            "/login link carrying the token: opening it stores a cookie in that browser and "
            "goes on to the page without the token in the address. Exit 1 when the page is off."
        ),
    )
    url.add_argument(
        "--host",
        default=None,
        metavar="NAME",
        help="the name or address other devices reach this computer by (default: the listen "
        "address, or this computer's host name when listening on 0.0.0.0)",
    )
    url.set_defaults(handler=run_url)
    token = actions.add_parser(
        "token",
        help="print a new random token for [web] token",
        description="Print a new random token to paste into [web] token (nothing is written).",
    )
    token.set_defaults(handler=run_token)
