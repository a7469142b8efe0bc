"""The phone's "Trust This Computer?" dialog: what a Pair from a host it does not trust gets.

lockdownd asks this for every Pair of an unknown host. The dialog appears only
``trust_prompt_delay_seconds`` after plug-in (usbmuxd #281: more than 10-30 s on iOS 26.3.1);
until then, and for ``pending_polls`` more requests, the answer is
``PairingDialogResponsePending`` (libimobiledevice #372, go-ios #588). Then the simulated user
taps what the phone's :class:`~rollkeeper.simulator.phone.TrustPolicy` says.
"""

from __future__ import annotations

import enum

from rollkeeper.simulator.phone import TrustPolicy
from rollkeeper.simulator.runtime import PhoneRuntime


class DialogAnswer(enum.Enum):
    """What the dialog says to one Pair request."""

    PENDING = "pending"
    TRUST = "trust"
    DONT_TRUST = "dont_trust"


def dialog_answer(runtime: PhoneRuntime, now: float) -> DialogAnswer:
    """The answer to a Pair of a host the phone does not trust yet, at loop time ``now``.

    A pending answer to a shown dialog counts against ``pending_polls``; one before the dialog
    has appeared does not (nobody could have tapped yet).
    """
    state = runtime.state
    if state.trust is TrustPolicy.PAIRED:
        return DialogAnswer.TRUST
    if now < state.plugged_at + state.trust_prompt_delay_seconds:
        return DialogAnswer.PENDING
    if runtime.pending_answers < state.pending_polls:
        runtime.pending_answers += 1
        return DialogAnswer.PENDING
    return DialogAnswer.TRUST if state.trust is TrustPolicy.ACCEPT else DialogAnswer.DONT_TRUST
