"""Upload the dashboards to a Grafana over its HTTP API, overwriting only smswatch's own.

Plain `requests` against the documented endpoints (`/api/folders`, `/api/datasources`,
`/api/dashboards/uid/<uid>`, `/api/dashboards/db`). Every failure becomes one `GrafanaError`
line that says what was attempted and what to check: the CLI prints it and exits 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from exporter import __version__
from exporter.dashboards import FOLDER_TITLE, FOLDER_UID, TAG
from exporter.errors import SmswatchError

#: The datasource `push` creates when the Grafana has no Prometheus datasource at all.
DATASOURCE_NAME = "Prometheus"
DATASOURCE_UID = "prometheus"


class GrafanaError(SmswatchError):
    """Grafana could not be reached, refused the request, or holds a dashboard not ours."""


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    what: str  # for messages: "read folder smswatch"


def _reason(exc: requests.exceptions.ConnectionError) -> str:
    text = str(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("Temporary failure in name resolution", "host name not found"),
        ("No route to host", "no route to host"),
        ("SSLError", "TLS handshake failed"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
    ):
        if needle in text:
            return reason
    return type(exc).__name__


def _message(response: requests.Response) -> str:
    """Grafana's own `message`, on one line, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = body.get("message", "") if isinstance(body, dict) else ""
    text = str(text or response.text[:200] or response.reason)
    return " ".join(text.split())


class Grafana:
    """A thin client for the few Grafana endpoints `push` needs."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = session or requests.Session()
        self._session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"smswatch/{__version__}",
            }
        )

    def _call(
        self, call: _Call, payload: Mapping[str, Any] | None = None, *, missing_ok: bool = False
    ) -> Any:
        """Send one request; return the decoded JSON, or None for a tolerated 404."""
        try:
            response = self._session.request(
                call.method, self.url + call.path, json=payload, timeout=self.timeout
            )
        except requests.exceptions.Timeout as exc:
            raise GrafanaError(
                f"Grafana at {self.url} did not answer within {self.timeout:g}s "
                f"({call.method} {call.path})"
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise GrafanaError(f"cannot reach Grafana at {self.url}: {_reason(exc)}") from exc
        status = response.status_code
        if status == 404 and missing_ok:
            return None
        if status == 401:
            raise GrafanaError(
                f"Grafana at {self.url} rejected the token (401 Unauthorized): set GRAFANA_TOKEN "
                "or --grafana.token-file to a valid service account token"
            )
        if status == 403:
            raise GrafanaError(
                f"Grafana at {self.url} does not allow the token to {call.what} (403 Forbidden): "
                "the service account needs the Editor role (Admin to create a datasource)"
            )
        if status == 404:
            raise GrafanaError(
                f"Grafana at {self.url} has no {call.method} {call.path} (404 Not Found): is "
                "--grafana.url the root URL of Grafana?"
            )
        if status >= 500:
            raise GrafanaError(
                f"Grafana at {self.url} failed to {call.what} (HTTP {status}): {_message(response)}"
            )
        if status >= 400:
            raise GrafanaError(
                f"Grafana at {self.url} refused to {call.what} (HTTP {status}): "
                f"{_message(response)}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise GrafanaError(
                f"Grafana at {self.url} answered {call.method} {call.path} with something other "
                "than JSON: is --grafana.url the root URL of Grafana?"
            ) from exc

    def folder(self, uid: str) -> dict[str, Any] | None:
        """The folder with this uid, or None."""
        result: dict[str, Any] | None = self._call(
            _Call("GET", f"/api/folders/{uid}", f"read folder {uid}"), missing_ok=True
        )
        return result

    def create_folder(self, uid: str, title: str) -> None:
        """Create a folder."""
        self._call(
            _Call("POST", "/api/folders", f"create folder {uid}"), {"uid": uid, "title": title}
        )

    def datasources(self) -> list[dict[str, Any]]:
        """Every datasource of the organisation."""
        result: list[dict[str, Any]] = self._call(
            _Call("GET", "/api/datasources", "list datasources")
        )
        return result

    def create_datasource(self, payload: Mapping[str, Any]) -> None:
        """Create a datasource."""
        self._call(
            _Call("POST", "/api/datasources", f"create datasource {payload['name']}"), payload
        )

    def dashboard(self, uid: str) -> dict[str, Any] | None:
        """The dashboard with this uid and its meta (`{"dashboard": …, "meta": …}`), or None."""
        result: dict[str, Any] | None = self._call(
            _Call("GET", f"/api/dashboards/uid/{uid}", f"read dashboard {uid}"), missing_ok=True
        )
        return result

    def save_dashboard(self, dashboard: Mapping[str, Any], folder_uid: str) -> None:
        """Create or overwrite a dashboard (matched by uid) in a folder."""
        self._call(
            _Call("POST", "/api/dashboards/db", f"save dashboard {dashboard['uid']}"),
            {
                "dashboard": dashboard,
                "folderUid": folder_uid,
                "overwrite": True,
                "message": f"Pushed by smswatch {__version__}",
            },
        )


def datasource_payload(prometheus_url: str, *, is_default: bool) -> dict[str, Any]:
    """The Prometheus datasource `push` creates, like the provisioned one."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": "prometheus",
        "access": "proxy",
        "url": prometheus_url,
        "isDefault": is_default,
        "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
    }


def _owned(existing: Mapping[str, Any]) -> bool:
    """Whether a dashboard already in Grafana was made by smswatch (it carries our tag)."""
    tags = existing.get("dashboard", {}).get("tags") or []
    return TAG in tags


def push(
    grafana: Grafana,
    dashboards: Mapping[str, Mapping[str, Any]],
    *,
    prometheus_url: str,
    force: bool = False,
    report: Callable[[str], None] = print,
) -> None:
    """Create the folder and, when Grafana has none, a Prometheus datasource; then upload every
    dashboard. A dashboard with the same uid that smswatch did not make is left alone (and the
    push fails before uploading anything) unless `force`."""
    if grafana.folder(FOLDER_UID) is None:
        grafana.create_folder(FOLDER_UID, FOLDER_TITLE)
        report(f"folder {FOLDER_UID}: created")
    else:
        report(f"folder {FOLDER_UID}: exists")

    existing_sources = grafana.datasources()
    if any(source.get("type") == "prometheus" for source in existing_sources):
        report("datasource: a Prometheus datasource exists, left as is")
    else:
        is_default = not any(source.get("isDefault") for source in existing_sources)
        grafana.create_datasource(datasource_payload(prometheus_url, is_default=is_default))
        report(f"datasource {DATASOURCE_NAME}: created ({prometheus_url})")

    actions: dict[str, str] = {}
    for uid in dashboards:
        existing = grafana.dashboard(uid)
        if existing is None:
            actions[uid] = "created"
            continue
        meta = existing.get("meta", {})
        if meta.get("provisioned"):
            raise GrafanaError(
                f"dashboard {uid} is provisioned from files in Grafana and cannot be overwritten "
                "over the API: update the provisioned files instead"
            )
        if not _owned(existing) and not force:
            title = existing.get("dashboard", {}).get("title", "?")
            raise GrafanaError(
                f"dashboard {uid} ({title!r}) exists in Grafana but was not made by smswatch "
                f"(no {TAG!r} tag): not overwritten; use --force to replace it"
            )
        actions[uid] = "updated" if _owned(existing) else "replaced (--force)"

    for uid, dashboard in dashboards.items():
        grafana.save_dashboard(dashboard, FOLDER_UID)
        report(f"dashboard {uid}: {actions[uid]}")
