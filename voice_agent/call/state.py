"""Where a call is in its turn-taking, and the one place that changes it.

    LISTENING  --the caller's turn ended------------------------------>  THINKING
    THINKING   --the answer's first sentence is ready------------------>  ANSWERING
    THINKING   --the barge-in was the agent's echo, or an "uh-huh"----->  RESUMING
    THINKING, ANSWERING, RESUMING
               --said; noise; dropped; talked over; failed------------->  LISTENING
    LISTENING, THINKING, ANSWERING, RESUMING
               --an EndCall or a Transfer has been said---------------->  CLOSING
    any        --finish()---------------------------------------------->  ENDED

The caller's side is not a state here: the caller may talk in any of them, and what that
means depends on the state (THINKING or RESUMING: the caller went on, drop the answer;
ANSWERING, or a greeting or prompt still playing: a barge-in if long enough; CLOSING:
nothing). What the caller still has to hear is Playback's to say: the greeting and the
silence prompts are said while LISTENING, since they answer nothing.
"""

from __future__ import annotations

import logging
from enum import Enum

log = logging.getLogger(__name__)


class CallState(Enum):
    LISTENING = "listening"  # no answer under way: waiting for the caller's next turn
    # The caller's turn ended: transcribing it, asking the policy, synthesizing its first
    # sentence. Nothing of the answer was said yet: the caller going on drops it.
    THINKING = "thinking"
    # The answer's first sentence is ready: the caller's words are on the record, and only
    # a barge-in stops the answer.
    ANSWERING = "answering"
    # A barge-in was the agent's own echo or the caller saying "uh-huh": saying the rest of
    # what was cut off. As in THINKING, the caller starting again drops it.
    RESUMING = "resuming"
    # The goodbye or the transfer line is out: it is said in full, no more turns are taken,
    # and the line is hung up once the caller has heard it.
    CLOSING = "closing"
    ENDED = "ended"  # finish(): everything stopped, the record is being made


LISTENING, THINKING, ANSWERING, RESUMING, CLOSING, ENDED = CallState

ANSWER_STATES = frozenset({THINKING, ANSWERING, RESUMING})  # an answer task is running

LEGAL: dict[CallState, frozenset[CallState]] = {
    LISTENING: frozenset({THINKING, CLOSING, ENDED}),
    THINKING: frozenset({LISTENING, ANSWERING, RESUMING, CLOSING, ENDED}),
    ANSWERING: frozenset({LISTENING, CLOSING, ENDED}),
    RESUMING: frozenset({LISTENING, CLOSING, ENDED}),
    CLOSING: frozenset({ENDED}),
    ENDED: frozenset(),
}


class CallStates:
    """The current state and its changes. A change the table does not allow is logged as an
    error and made all the same: a live call is never stopped over its bookkeeping. Tests
    read `illegal` to see that none happened."""

    def __init__(self, call_sid: str, start: CallState = LISTENING) -> None:
        self.call_sid = call_sid
        self.now = start
        self.history = [start]  # every state the call was in, in order (a few per turn)
        self.illegal: list[tuple[CallState, CallState]] = []

    def to(self, new: CallState) -> None:
        old = self.now
        if new is old:
            return
        if new not in LEGAL[old]:
            self.illegal.append((old, new))
            log.error("call %s: illegal state change %s -> %s", self.call_sid, old.name, new.name)
        else:
            log.debug("call %s: %s -> %s", self.call_sid, old.name, new.name)
        self.now = new
        self.history.append(new)

    @property
    def answering(self) -> bool:
        """An answer to the caller's turn is under way (its task is running)."""
        return self.now in ANSWER_STATES

    @property
    def closing(self) -> bool:
        """No more turns: the last words are being said, or the call is over."""
        return self.now in (CLOSING, ENDED)

    @property
    def droppable(self) -> bool:
        """Nothing of the caller's answer was said: if the caller goes on, it is dropped."""
        return self.now in (THINKING, RESUMING)
