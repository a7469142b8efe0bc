"""What to do once a batch's records are committed (the ``file_archived`` events).

:mod:`.group_durability` records a batch of placed files in one transaction that commits only
after the folders are fsync'ed; a "this file is archived" event said before that commit would
tell a reader (``status``, a test, a log follower) of a record it cannot see yet, or never
will if the batch fails. Inside :func:`collect_after_commit` the actions handed to
:func:`after_commit` wait for the caller to run them after the commit; outside, they run at
once.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

_pending: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "after_commit", default=None
)


def after_commit(action: Callable[[], None]) -> None:
    """Run ``action`` once the records made so far are committed (now, outside a batch)."""
    pending = _pending.get()
    if pending is None:
        action()
    else:
        pending.append(action)


@contextlib.contextmanager
def collect_after_commit() -> Iterator[list[Callable[[], None]]]:
    """Collect the :func:`after_commit` actions of this context, for the caller to run after
    its commit (and to drop when the batch fails: nothing it did was recorded)."""
    actions: list[Callable[[], None]] = []
    token = _pending.set(actions)
    try:
        yield actions
    finally:
        _pending.reset(token)
