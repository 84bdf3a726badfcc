"""The e-mail that carries a written report: subject and body in the report's language, the
PDF (and optionally the CSV tables) attached with `manifest.json`, and the manifest's SHA-256
in the body, so a reader can check that what arrived is what smswatch wrote.

Every attached file is read once and checked against the digest the manifest recorded: a
report changed on disk after it was written is refused, never mailed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from exporter import __version__
from exporter.errors import ReportError
from exporter.reports.mail import MailSettings
from exporter.reports.outputs import MANIFEST
from exporter.reports.texts import Texts

_TYPES = {".pdf": ("application", "pdf"), ".csv": ("text", "csv"), ".json": ("application", "json")}


@dataclass(frozen=True)
class Letter:
    """A composed e-mail and what it says about the report."""

    message: EmailMessage
    report: str
    manifest_sha256: str
    attachments: tuple[str, ...]


def compose(
    report_dir: Path,
    recipients: Sequence[str],
    settings: MailSettings,
    *,
    now: datetime | None = None,
) -> Letter:
    """The e-mail of the report in `report_dir` to `recipients`. Raises `ReportError` when the
    report has no manifest or PDF, or a file no longer matches its recorded SHA-256."""
    manifest_bytes = _read(report_dir / MANIFEST)
    try:
        manifest: dict[str, Any] = json.loads(manifest_bytes)
        files: dict[str, dict[str, Any]] = manifest["files"]
        name = str(manifest["report"])
        lang = str(manifest["lang"])
        period = manifest["period"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"{report_dir / MANIFEST} is not a report manifest: {exc}") from exc
    pdf = f"{name}.pdf"
    if pdf not in files:
        raise ReportError(f"report {name} has no PDF to mail (add pdf to its formats)")
    wanted = [pdf]
    if settings.attach_csv:
        wanted += sorted(f for f in files if f.endswith(".csv"))
    t = Texts(lang)
    kind = t(f"kind.{period['kind']}")
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()

    message = EmailMessage()
    message["Subject"] = t(
        "mail.subject", title=t("title"), kind=kind, report_id=_report_id(manifest)
    )
    message["From"] = settings.sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = make_msgid("smswatch", settings.sender_address.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a robot
    listing = "\n".join(f"  {files[f]['sha256']}  {f}" for f in wanted)
    body = [
        t("mail.greeting"),
        "",
        t(
            "mail.attached",
            kind=kind,
            start=_local(period["start"]),
            end=_local(period["end"]),
            zone=period["timezone"],
        ),
        t("complete.yes") if manifest.get("data_complete") else t("complete.no"),
        "",
        t("mail.manifest_sha256"),
        f"  {manifest_sha256}  {MANIFEST}",
        "",
        t("mail.files"),
        listing,
        "",
        t("mail.check"),
        "",
        f"-- \n{t('footer')} · smswatch {__version__}",
    ]
    message.set_content("\n".join(body) + "\n", charset="utf-8")
    for filename in wanted:
        content = _read(report_dir / filename)
        if hashlib.sha256(content).hexdigest() != files[filename]["sha256"]:
            raise ReportError(
                f"{report_dir / filename} changed since the report was written "
                "(its SHA-256 differs from manifest.json): not mailed"
            )
        maintype, subtype = _TYPES[Path(filename).suffix]
        message.add_attachment(
            content,
            maintype=maintype,
            subtype=subtype,
            filename=filename,
            params={"charset": "utf-8"} if maintype == "text" else {},
        )
    maintype, subtype = _TYPES[".json"]
    message.add_attachment(manifest_bytes, maintype=maintype, subtype=subtype, filename=MANIFEST)
    return Letter(message, name, manifest_sha256, (*wanted, MANIFEST))


def _report_id(manifest: dict[str, Any]) -> str:
    """``2026-03-10``, ``2026-W11``, ``2026-03``: the report id without its period kind."""
    report_id = str(manifest.get("report_id") or manifest["report"])
    return report_id.removeprefix(f"{manifest['period']['kind']}-")


def _local(moment: str) -> str:
    """``2026-03-10T00:00:00+08:00`` → ``2026-03-10 00:00`` (the zone is named beside it)."""
    try:
        return datetime.fromisoformat(moment).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return moment


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror}") from exc
