"""What the model is told about the business and how to behave on the phone."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from routing.capabilities import can_book, can_transfer, has_hours
from routing.tools import SMS_CONSENT_WORDING, ReceptionTools
from storage.profiles import BusinessProfile

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def transfer_line(dispatcher: str | None) -> str:
    """Said when the model hands off without a word, so the caller knows what happens."""
    who = f"{dispatcher}, our on-call dispatcher," if dispatcher else "our on-call dispatcher"
    return f"I'm connecting you with {who} now."


def goodbye_line(profile: BusinessProfile) -> str:
    return f"Thank you for calling {profile.name}. Goodbye."


def greeting(profile: BusinessProfile) -> str:
    text = profile.greeting or f"Thanks for calling {profile.name}. How can I help you today?"
    if profile.recording_enabled:
        text += " This call may be recorded."
    return text


def system_prompt(profile: BusinessProfile, tools: ReceptionTools) -> str:
    now = tools.now()
    sections = [
        f"You are the phone receptionist of {profile.name}, a home-services business. "
        "You are on a live phone call: everything you write is spoken aloud by a voice.",
        _facts(profile, now, tools.caller_number),
        _STYLE,
        _emergencies(profile),
        _booking(now) if can_book(profile) else _no_booking(profile),
        _MESSAGES,
        _CLOSING,
    ]
    return "\n\n".join(sections)


def _facts(profile: BusinessProfile, now: datetime, caller: str) -> str:
    services = "; ".join(
        f"{s.name} (visits take about {s.visit_minutes} minutes)" for s in profile.services
    )
    unknown = "not on file (don't guess: offer to have someone call back)"
    lines = [
        f"Now: {now.strftime('%A, %B')} {now.day}, {now.year}, {_clock(now.time())} "
        f"(time zone {profile.timezone}).",
        f"Opening hours: {opening_hours(profile) if has_hours(profile) else unknown}.",
        f"Services: {services or unknown}.",
        f"Service area: {', '.join(profile.service_area) or unknown}.",
        f"The caller's number (caller ID): {caller}.",
    ]
    return "Facts (answer questions only from these):\n" + "\n".join(lines)


def opening_hours(profile: BusinessProfile) -> str:
    """'Monday to Friday 7 AM to 5 PM; Saturday closed; ...' with equal neighbours merged."""
    spans = [_span(profile, day) for day in range(7)]
    runs: list[tuple[int, int]] = []  # (first day, last day) of equal spans
    for day, span in enumerate(spans):
        if runs and spans[runs[-1][1]] == span:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    if len(runs) == 1:
        return f"every day {spans[0]}"
    return "; ".join(
        f"{_DAY_NAMES[a]}{'' if a == b else ' to ' + _DAY_NAMES[b]} {spans[a]}" for a, b in runs
    )


def _span(profile: BusinessProfile, weekday: int) -> str:
    hours = profile.hours_for(weekday)
    if hours is None:
        return "closed"
    return f"{_clock(hours[0])} to {_clock(hours[1])}"


def _clock(t: time) -> str:
    hour = t.hour % 12 or 12
    suffix = "AM" if t.hour < 12 else "PM"
    return f"{hour} {suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d} {suffix}"


_STYLE = """How to speak:
- This is a phone call: one or two short sentences per reply, one question at a time.
- Plain spoken words only: no lists, no markdown, no symbols, no emojis.
- Say times the way people do ("tomorrow at 9 AM"), never in ISO format.
- Answer questions only from the facts above; if you don't know, offer to take a message.
- Never invent availability or prices: use the tools."""


def _emergencies(profile: BusinessProfile) -> str:
    dispatcher = profile.on_call if can_transfer(profile) else None
    signs = ", ".join(profile.emergency_rules) or "flooding, a gas smell, sparks or smoke"
    gas = (
        "If the caller smells gas, first tell them to leave the house now and call the gas "
        "utility from outside"
    )
    if dispatcher is None:  # nobody to hand off to: keep them safe, take an urgent message
        return (
            f"Emergencies ({signs}, or anything dangerous): no dispatcher is on call right now. "
            f"{gas}. Tell them to call 911 if anyone is in danger, then take an urgent message "
            "with take_message."
        )
    connecting = transfer_line(dispatcher.name)
    return (
        f"Emergencies ({signs}, or anything dangerous or urgent): hand off at once. Say one "
        f'short sentence ("{connecting}") and call transfer_to_dispatcher with a short reason '
        f"and a summary of what you know. Don't collect booking details first. {gas}, then "
        "hand off."
    )


def _no_booking(profile: BusinessProfile) -> str:
    return f"""Visits: this line can't book visits for {profile.name}. Never promise a technician,
a visit or a time. For any job, take a message with take_message and tell the caller someone
from {profile.name} will call them back."""


def _booking(now: datetime) -> str:
    example = (now + timedelta(days=1)).strftime("%Y-%m-%dT09:00")
    return f"""Booking a visit:
- Collect the problem, the caller's name, the service address and the day and time.
- If the address is outside the service area, say so kindly and offer to take a message.
- Call check_availability before promising a time; if it is not free, offer the alternatives.
- Read the details back (name, address, problem, time) and get a yes before book_appointment.
- After booking, ask exactly "{SMS_CONSENT_WORDING}" and call record_sms_consent with the
  answer (agreed true or false).
- `when` is an ISO 8601 local date-time in the business time zone, like {example}."""


_MESSAGES = """Everything else (billing, quotes, call-backs, anything you can't answer):
take a message with take_message: their name, the call-back number (the caller ID above unless
they give another), the reason and the best time to call back.
If a tool result says our system is unavailable, tell the caller plainly ("Sorry, I can't reach
our booking system right now") and take a message instead; a visit is booked only when
book_appointment says booked."""

_CLOSING = """When the caller has nothing else, say a short goodbye and call end_call."""
