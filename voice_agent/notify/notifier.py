"""What happens outside the call when something happens in it: the live feed dispatchers
follow, CRM webhooks, SMS to the dispatcher and (with consent) to the caller. Never blocks
the call: everything here is queued or spawned, and failures are logged, not raised."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from storage.profiles import BusinessProfile

log = logging.getLogger(__name__)

WEBHOOK_EVENTS = {"booking.created", "call.handed_off", "message.created", "call.completed"}
# Call events as the dispatcher console names them.
LIVE_EVENTS = {
    "call.started": "call.started",
    "call.transcript": "call.transcript",
    "call.handed_off": "call.handoff",
    "call.ended": "call.ended",
    "booking.created": "booking.created",
    "message.created": "message.created",
}


class Notifier:
    def __init__(
        self, sms: Any | None = None, webhooks: Any | None = None, bus: Any | None = None
    ) -> None:
        self.sms, self.webhooks, self.bus = sms, webhooks, bus
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, business: BusinessProfile, event: str, data: dict[str, Any]) -> None:
        """Safe from any thread: tools run in worker threads next to the database."""
        if self._loop is None:
            log.warning("notification %s dropped: notifier not started", event)
            return
        self._loop.call_soon_threadsafe(self._dispatch, business, event, data)

    def _dispatch(self, business: BusinessProfile, event: str, data: dict[str, Any]) -> None:
        if self.bus is not None and event in LIVE_EVENTS:
            live = {"type": LIVE_EVENTS[event], "call_sid": data.get("call_sid"), "data": data}
            self.bus.publish(business.id, live)
        if self.webhooks is not None and event in WEBHOOK_EVENTS:
            self.webhooks.publish(business.id, event, data)
        if self.sms is None:
            return
        if event == "call.handed_off" and data.get("dispatcher_phone"):
            body = (
                f"{business.name}: call from {data.get('caller')} handed to you. "
                f"Reason: {data.get('reason')}. {data.get('summary') or ''}"
            ).strip()
            self._spawn(
                self.sms.send(
                    business.id,
                    business.line,
                    data["dispatcher_phone"],
                    body[:320],
                    "dispatcher_alert",
                    data.get("call_sid"),
                )
            )
        elif event == "booking.confirmation_requested":
            b = data["booking"]
            body = (
                f"{business.name}: your visit is booked for {b['scheduled_for']} at "
                f"{b['address']}. Reply STOP to opt out."
            )
            self._spawn(
                self.sms.send(
                    business.id,
                    business.line,
                    data["to"],
                    body,
                    "booking_confirmation",
                    data.get("call_sid"),
                )
            )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
