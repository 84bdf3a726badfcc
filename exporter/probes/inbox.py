"""The canary handset's inbox: gammu-smsd's files backend (Debian package `gammu-smsd`).

gammu-smsd-files(7), Gammu 1.42: a received message is stored as
`IN<date>_<time>_<serial>_<sender>_<sequence>.<ext>`, for example
`IN20021130_021531_00_+45409000931640979_00.txt`: date `YYYYMMDD`, time `HHMMSS` (the local
time of the machine running gammu-smsd), `serial` orders messages received in the same second,
`sequence` is the part of a multipart message, `ext` is `txt` for text (`bin` for 8-bit). The
file holds the text as `InboxFormat` says: `unicode` (the default: UTF-16 with a byte order
mark), `standard` (the locale's charset; read as UTF-8 here) or `detail` (a backup file, whose
text lines still carry the nonce).

The reader lists the directory, joins the parts of a message in order, and hands back each
message once (per reader). Senders are never kept: only the time and the text, from which the
probe takes the nonce.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

INBOX_FILE = re.compile(
    r"^IN(?P<date>\d{8})_(?P<time>\d{6})_(?P<serial>\d+)_(?P<sender>[^_]*)_(?P<part>\d+)\.txt$"
)
#: A canary's nonce: `SW` and ten base32 characters.
NONCE = re.compile(r"\bSW[A-Z2-7]{10}\b")


@dataclass(frozen=True)
class InboxMessage:
    """One received message (its parts joined): when the handset got it, and its text."""

    received_ms: int
    text: str
    name: str  # the first part's file name, for the timeline (the sender is masked out)


def decode_text(raw: bytes) -> str:
    """The text of an inbox file: UTF-16 with a BOM (InboxFormat=unicode), else UTF-8."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", "replace")
    return raw.decode("utf-8-sig", "replace")


def file_time_ms(date: str, time_text: str, zone: str) -> int:
    """The receive time of a file name in the zone gammu-smsd wrote it in ("" = local)."""
    naive = datetime.strptime(date + time_text, "%Y%m%d%H%M%S")
    aware = naive.replace(tzinfo=ZoneInfo(zone)) if zone else naive.astimezone()
    return int(aware.timestamp() * 1000)


def masked_name(name: str) -> str:
    """A file name with its sender number masked (the number never leaves the reader)."""
    match = INBOX_FILE.match(name)
    if not match:
        return name
    sender = match.group("sender")
    return name.replace(f"_{sender}_", f"_{'*' * max(0, len(sender) - 4)}{sender[-4:]}_", 1)


class GammuInbox:
    """Reads a gammu-smsd files-backend inbox directory; each message is handed back once."""

    def __init__(self, directory: str, zone: str = "") -> None:
        self.directory = Path(directory)
        self.zone = zone
        self._seen: set[str] = set()
        self._failing = False

    def read_new(self) -> list[InboxMessage]:
        """Messages not handed back before, their parts joined in order."""
        try:
            names = sorted(os.listdir(self.directory))
        except OSError as exc:
            if not self._failing:  # once until it can be read again, not every check
                log.warning(
                    "canary inbox cannot be read: no handset proof until it can",
                    extra={"inbox": str(self.directory), "error": exc.strerror or str(exc)},
                )
            self._failing = True
            return []
        if self._failing:
            log.info("canary inbox readable again", extra={"inbox": str(self.directory)})
            self._failing = False
        self._seen &= set(names)  # files removed from the inbox are forgotten
        groups: dict[tuple[str, str, str, str], list[tuple[int, str]]] = {}
        for name in names:
            match = INBOX_FILE.match(name)
            if match is None or name in self._seen:
                continue
            key = (match["date"], match["time"], match["serial"], match["sender"])
            groups.setdefault(key, []).append((int(match["part"]), name))
        out = []
        for (date, time_text, _, _), parts in sorted(groups.items()):
            parts.sort()
            texts = []
            for _, name in parts:
                try:
                    texts.append(decode_text((self.directory / name).read_bytes()))
                except OSError:
                    continue
                self._seen.add(name)
            try:
                at = file_time_ms(date, time_text, self.zone)
            except ValueError:
                continue
            out.append(InboxMessage(at, "".join(texts), masked_name(parts[0][1])))
        return out


def nonces_in(text: str) -> list[str]:
    """The canary nonces a received text carries."""
    return NONCE.findall(text)
