"""The ReceptionTools as the model sees them: JSON schemas, and strict checking of the
arguments it sends back (models do send broken JSON, unknown fields and wrong types)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from routing.capabilities import can_book, can_transfer
from storage.profiles import BusinessProfile

WHEN = (
    "ISO 8601 local date-time in the business time zone, e.g. 2026-12-01T09:00 "
    "(the caller's own words are accepted too)"
)


@dataclass(frozen=True)
class Param:
    kind: type[str] | type[bool]
    description: str
    required: bool = True

    def schema(self) -> dict[str, str]:
        return {
            "type": "boolean" if self.kind is bool else "string",
            "description": self.description,
        }


@dataclass(frozen=True)
class Rejection:
    """Arguments that can't be used: `message` tells the model what to fix; `kind` is all
    the log gets (never the values: they are the caller's name, address, problem)."""

    kind: str
    message: str


@dataclass(frozen=True)
class ToolSpec:
    description: str
    params: dict[str, Param]


TOOLS: dict[str, ToolSpec] = {
    "check_availability": ToolSpec(
        "Check whether a visit can be booked at a time. If not, returns why and the nearest "
        "free times.",
        {"when": Param(str, WHEN)},
    ),
    "book_appointment": ToolSpec(
        "Book a visit, only after reading the details back and the caller said yes.",
        {
            "name": Param(str, "The caller's name."),
            "address": Param(str, "The service address."),
            "problem": Param(str, "The problem in the caller's words."),
            "when": Param(str, WHEN),
            "service": Param(str, "One of the business's services, if clear.", required=False),
        },
    ),
    "transfer_to_dispatcher": ToolSpec(
        "Hand an emergency to the on-call dispatcher; the call is transferred after you speak.",
        {
            "reason": Param(str, "Why, in a few words (e.g. 'burst pipe')."),
            "summary": Param(str, "What the dispatcher should know: who, where, what."),
        },
    ),
    "take_message": ToolSpec(
        "Take a message for the office (anything that is not a booking or an emergency).",
        {
            "name": Param(str, "The caller's name."),
            "reason": Param(str, "What it is about."),
            "callback_number": Param(str, "Only if different from the caller ID.", required=False),
            "best_time": Param(str, "The best time to call back.", required=False),
            "text": Param(str, "The message, if longer than the reason.", required=False),
        },
    ),
    "record_sms_consent": ToolSpec(
        "Record the caller's answer to 'may we text you a confirmation?'.",
        {"agreed": Param(bool, "True if they said yes.")},
    ),
    "end_call": ToolSpec("Hang up, after saying goodbye.", {}),
}


def offered(profile: BusinessProfile) -> list[str]:
    """The tools this business's profile can back: no booking without services and hours,
    no transfer without a dispatcher on call."""
    names = list(TOOLS)
    if not can_book(profile):
        names = [n for n in names if n not in ("check_availability", "book_appointment")]
    if not can_transfer(profile):
        names.remove("transfer_to_dispatcher")
    return names


def tool_schemas(profile: BusinessProfile) -> list[dict[str, Any]]:
    """OpenAI `tools=[...]`. Not `strict`: many OpenAI-compatible servers reject it."""
    services = ", ".join(s.name for s in profile.services)
    out = []
    for name in offered(profile):
        spec = TOOLS[name]
        properties = {key: param.schema() for key, param in spec.params.items()}
        if name == "book_appointment" and services:
            properties["service"]["description"] += f" Services: {services}."
        parameters = {
            "type": "object",
            "properties": properties,
            "required": [key for key, param in spec.params.items() if param.required],
            "additionalProperties": False,
        }
        out.append({"type": "function", "function": {
            "name": name, "description": spec.description, "parameters": parameters}})  # fmt: skip
    return out


def parse_arguments(
    name: str, raw: str, tools: list[str] | None = None
) -> dict[str, Any] | Rejection:
    """The keyword arguments for ReceptionTools.<name>, or a Rejection. `tools`: the names
    offered to the model (all by default)."""
    names = list(TOOLS) if tools is None else tools
    spec = TOOLS.get(name) if name in names else None
    if spec is None:
        return Rejection(
            "unknown tool", f"Unknown tool {name!r}. The tools are: {', '.join(names)}."
        )
    try:
        args = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        return Rejection("invalid JSON", f"The arguments for {name} are not valid JSON "
                         f"({exc.msg} at character {exc.pos}). Call {name} again with a JSON "
                         "object.")  # fmt: skip
    if not isinstance(args, dict):
        return Rejection("not an object", f"The arguments for {name} must be a JSON object.")
    problems = [f"unknown field {key!r}" for key in args if key not in spec.params]
    kinds = {"unknown field"} if problems else set()
    for key, param in spec.params.items():
        value = args.get(key)
        if value is None:  # an optional field sent as null counts as not given
            if param.required:
                problems.append(f"missing {key!r}")
                kinds.add("missing field")
        elif type(value) is not param.kind:  # exact: JSON true is not a string, 1 not a bool
            problems.append(f"{key!r} must be a {param.schema()['type']}")
            kinds.add("wrong type")
    if problems:
        return Rejection(", ".join(sorted(kinds)), f"Invalid arguments for {name}: "
                         f"{'; '.join(problems)}. Call {name} again with corrected "
                         "arguments.")  # fmt: skip
    return {key: value for key, value in args.items() if value is not None}


def sanitized_arguments(raw: str) -> str:
    """What goes back into the history: some servers re-parse past tool-call arguments and
    fail on broken JSON, and the tool's error result already says what was wrong."""
    try:
        json.loads(raw)
    except json.JSONDecodeError:
        return "{}"
    return raw
