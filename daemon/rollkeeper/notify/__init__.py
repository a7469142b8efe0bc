"""Telling the user: desktop notifications, hooks, health-check pings, and their rate limits.

:class:`Notifier` (:mod:`.notifier`) is what the service holds: it decides what to send and
starts each delivery in the background. What a run tells it is a :class:`RunNotice`
(:mod:`.notices`); which outcomes are announced and how often is :mod:`.policy`; the words are
:mod:`.messages`; the channels are :mod:`.desktop` (notify-send, osascript), :mod:`.hooks`
(the user's commands) and :mod:`.healthcheck` (healthchecks.io-style pings).
"""

from rollkeeper.notify.hooks import HOOK_OUTPUT_LIMIT, HOOK_VARIABLES
from rollkeeper.notify.notices import RunNotice
from rollkeeper.notify.notifier import NotificationSettingsLike, Notifier

__all__ = [
    "HOOK_OUTPUT_LIMIT",
    "HOOK_VARIABLES",
    "NotificationSettingsLike",
    "Notifier",
    "RunNotice",
]
