"""What the provider adapters share when they read a payload: its body, and item validity.

A provider's answer or pushed body is a list of items; each item becomes a record or is counted
as invalid, and one bad item never spoils the others. A body that is not the expected JSON at
all is a `BadPayload`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from exporter.sources.client import BadPayload
from exporter.web.query import parse_query

T = TypeVar("T")


def json_body(body: bytes) -> Any:
    """A pushed body decoded as JSON (BadPayload when it is not JSON)."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadPayload(f"not JSON: {exc}") from exc


def form_fields(body: bytes) -> dict[str, str]:
    """A pushed form body's fields, the last value of each (BadPayload when not UTF-8)."""
    try:
        form = parse_query(body.decode("utf-8"), keep_blank=True)
    except UnicodeDecodeError as exc:
        raise BadPayload("form body is not UTF-8") from exc
    return {k: v[-1] for k, v in form.items() if v}


def json_reports(body: bytes, what: str) -> list[Any]:
    """A pushed body holding a JSON array of reports, or one report object → the reports.

    `what` names the body in the error (`callback body is not a JSON array`).
    """
    reports = json_body(body)
    if isinstance(reports, dict):
        return [reports]
    if not isinstance(reports, list):
        raise BadPayload(f"{what} is not a JSON array")
    return reports


def read_each(items: Iterable[Any], read: Callable[[dict[str, Any]], T]) -> tuple[list[T], int]:
    """(records, invalid): each item read into a record, or counted as invalid when it is not
    a JSON object or `read` finds it malformed (ValueError, TypeError)."""
    records: list[T] = []
    invalid = 0
    for item in items:
        try:
            if not isinstance(item, dict):
                raise ValueError("not an object")
            records.append(read(item))
        except (ValueError, TypeError):
            invalid += 1
    return records, invalid
