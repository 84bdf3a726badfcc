"""The root causes in words a manager understands, for legends and the explanation panel.

The label values themselves live in `exporter.catalogue` (CAUSES, CAUSE_NONE); this module only
says what they mean. A test checks the two agree, so a new cause cannot ship unexplained.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CauseWording:
    """How one cause label is shown to people who do not read PromQL."""

    label: str
    title: str  # short: a legend entry
    meaning: str  # one sentence: what happened
    action: str  # one sentence: who fixes it


CAUSE_WORDING: tuple[CauseWording, ...] = (
    CauseWording(
        "gateway",
        "SMS platform down",
        "The bank's SMS platform was down, in maintenance, or lost its links to the carriers, "
        "so messages were not sent.",
        "The SMS platform team and its vendor restore the service; messages may need resending.",
    ),
    CauseWording(
        "invalid_number",
        "Wrong or inactive phone number",
        "The phone number on file is wrong, empty, suspended or was ported to another carrier.",
        "Branches and the call centre update the cardholder's phone number.",
    ),
    CauseWording(
        "unreachable",
        "Phone unreachable",
        "The phone was switched off, out of coverage or on a troubled network, and the carrier "
        "gave up.",
        "Usually resolves itself; a spike in one carrier or area goes to that carrier.",
    ),
    CauseWording(
        "terminal_config",
        "POS terminal setup",
        "The payment terminal has its SMS notice switched off or runs outdated software, so no "
        "SMS was ever requested.",
        "The acquirer fixes the terminal's settings or updates its software.",
    ),
    CauseWording(
        "integration",
        "Bank-acquirer link fault",
        "The transaction never reached the SMS platform, or reached it late: an interface, data "
        "or authentication fault between the bank, the acquirer and the SMS platform.",
        "The integration team of the bank and the acquirer.",
    ),
    CauseWording(
        "throttled",
        "Sending limits reached",
        "A rate or frequency limit of the platform or the carrier held the message back.",
        "The SMS platform team raises the limits or spreads the load.",
    ),
    CauseWording(
        "filtered",
        "Blocked by the carrier",
        "The carrier's spam filter, a blacklist or the cardholder's opt-out blocked the message.",
        "The SMS platform team works with the carrier on the sender and the wording.",
    ),
    CauseWording(
        "unknown",
        "No delivery report",
        "No final delivery report arrived in time, so nobody knows whether the SMS arrived.",
        "The SMS platform team checks the carrier's delivery reports.",
    ),
)

#: Shown for delivered messages (`cause="none"`).
DELIVERED_TITLE = "Delivered"

CAUSE_TITLES: dict[str, str] = {wording.label: wording.title for wording in CAUSE_WORDING}


def explanation_markdown() -> str:
    """A Markdown table of every cause: the text panel that explains the failure legends."""
    lines = [
        "| Why the SMS did not arrive | What happened | Who fixes it |",
        "|---|---|---|",
    ]
    lines += [f"| **{w.title}** | {w.meaning} | {w.action} |" for w in CAUSE_WORDING]
    return "\n".join(lines) + "\n"
