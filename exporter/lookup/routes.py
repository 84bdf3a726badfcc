"""The lookup's HTTP routes on the exporter: `GET /api/v1/receipts` and the `/lookup` page.

These routes authenticate on their own (`access.py`), independently of the web config's basic
auth that guards `/metrics`: so `/metrics` can stay open while lookups need a token, and the
user Prometheus scrapes with cannot look anyone up. A refusal is always the same bare 401.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from exporter.lookup.access import (
    SESSION_COOKIE,
    Access,
    BasicAuth,
    Identity,
    Sessions,
    TokenFile,
    session_id,
)
from exporter.lookup.alerts import AlertHistory
from exporter.lookup.page import CSP, login_page, search_page
from exporter.lookup.query import BadLookup
from exporter.lookup.service import Caller, LookupService
from exporter.lookup.settings import LookupSettings
from exporter.store import Store
from exporter.web import Request, Response, SignInsThrottled, WebServer

log = logging.getLogger(__name__)

API_PATH = "/api/v1/receipts"
PAGE_PATH = "/lookup"
LOGIN_PATH = "/lookup/login"
LOGOUT_PATH = "/lookup/logout"

_PRIVATE = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make browsers send Origin: null
}
_HTML = "text/html; charset=utf-8"
_JSON = "application/json"


def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
    return Response(status, body, _JSON, {**_PRIVATE, **(headers or {})})


def _html(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status,
        text.encode("utf-8"),
        _HTML,
        {**_PRIVATE, "Content-Security-Policy": CSP, "X-Frame-Options": "DENY", **(headers or {})},
    )


def _single(query: dict[str, list[str]]) -> dict[str, str]:
    """Parameters as single strings (BadLookup when one is repeated)."""
    out: dict[str, str] = {}
    for name, values in query.items():
        if len(values) > 1:
            raise BadLookup("give each parameter once")
        out[name] = values[0]
    return out


def _lang(value: str, accept: str = "") -> str:
    if value in ("en", "zh"):
        return value
    return "zh" if accept.strip().lower().startswith("zh") else "en"


class LookupRoutes:
    """The API and page handlers over one `LookupService` and one `Access`."""

    def __init__(
        self,
        service: LookupService,
        access: Access,
        tls: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.access = access
        self.tls = tls
        self._clock = clock

    def mount(self, web: WebServer) -> None:
        """Add the routes; they bypass the web config's basic auth and check their own (with
        the web server's back-off on failed sign-ins)."""
        self.tls = web.tls
        self.access.basic = BasicAuth(web.basic_auth_user, web.basic_auth_hash)
        self.access.throttle = web.sign_ins
        if not self.access.configured:
            log.info("lookup: no tokens_file nor basic_auth_users configured, nobody can sign in")
        for path, route in (
            (API_PATH, self.api),
            (PAGE_PATH, self.page),
            (LOGIN_PATH, self.login),
            (LOGOUT_PATH, self.logout),
        ):
            web.routes[path] = route
            web.open_paths.add(path)

    # ------------------------------------------------------------------ helpers

    def _refused(self, request: Request, reason: str) -> None:
        log.warning(
            "lookup refused", extra={"path": request.path, "remote": request.remote, "why": reason}
        )

    def _challenge(self, page: bool = False) -> dict[str, str]:
        """The 401's challenge; the page's leaves Basic out so browsers show its sign-in form
        rather than their own password dialog."""
        schemes = ['Bearer realm="smswatch lookup"']
        if not page and self.access.allowed_users and self.access.basic is not None:
            schemes.append('Basic realm="smswatch lookup"')
        return {"WWW-Authenticate": ", ".join(schemes)}

    def _cookie(self, sid: str, max_age: int) -> dict[str, str]:
        secure = "; Secure" if self.tls else ""
        return {
            "Set-Cookie": f"{SESSION_COOKIE}={sid}; Max-Age={max_age}; Path=/; HttpOnly; "
            f"SameSite=Strict{secure}"
        }

    @staticmethod
    def _same_origin(request: Request) -> bool:
        """A POST from our own page (no Origin header: not a browser's cross-site request)."""
        origin = request.headers.get("origin", "")
        if not origin:
            return True
        host = request.headers.get("host", "")
        return origin.split("://", 1)[-1] == host

    # ------------------------------------------------------------------ API

    def _throttled(self, request: Request, exc: SignInsThrottled) -> dict[str, str]:
        self._refused(request, "too many failed sign-ins")
        return {"Retry-After": exc.retry_after}

    def api(self, request: Request) -> Response:
        """`GET /api/v1/receipts?rrn=…` (or txn_id, terminal+at, phone_last4+at) → JSON."""
        try:
            identity, _, reason = self.access.authenticate(
                request.headers.get("authorization"), request.remote
            )
        except SignInsThrottled as exc:
            return _json(429, {"error": "too many failed sign-ins"}, self._throttled(request, exc))
        if identity is None:
            self._refused(request, reason)
            return _json(401, {"error": "unauthorized"}, self._challenge())
        if request.method not in ("GET", "HEAD"):
            return _json(405, {"error": "use GET"}, {"Allow": "GET, HEAD"})
        caller = Caller(identity.user, identity.method, "api", request.remote)
        try:
            params = _single(request.query)
            lang = _lang(params.pop("lang", "en"))
            result = self.service.run(params, caller, lang)
        except BadLookup as exc:
            return _json(400, {"error": str(exc)})
        return _json(200, result.to_json())

    # ------------------------------------------------------------------ page

    def _page_identity(self, request: Request) -> Identity | None:
        identity = self.access.from_session(request.headers.get("cookie", ""))
        if identity is not None:
            return identity
        if request.headers.get("authorization"):
            found, _, reason = self.access.authenticate(
                request.headers.get("authorization"), request.remote
            )
            if found is None:
                self._refused(request, reason)
            return found
        return None

    def page(self, request: Request) -> Response:
        """The search page; the sign-in form (401) until signed in."""
        repeated = ""
        try:
            params = _single(request.query)
        except BadLookup as exc:
            params, repeated = {}, str(exc)
        lang = _lang(params.pop("lang", ""), request.headers.get("accept-language", ""))
        try:
            identity = self._page_identity(request)
        except SignInsThrottled as exc:
            return _html(429, login_page(lang, failed=True), self._throttled(request, exc))
        if identity is None:
            return _html(401, login_page(lang, failed=False), self._challenge(page=True))
        if request.method not in ("GET", "HEAD"):
            return _html(405, "use GET", {"Allow": "GET, HEAD"})
        now_ms = int(self._clock() * 1000)
        zone = self.service.settings.zone
        if repeated:
            return _html(400, search_page(lang, identity.user, {}, zone, now_ms, error=repeated))
        query = {k: v for k, v in params.items() if v.strip()}
        if not query:
            return _html(200, search_page(lang, identity.user, params, zone, now_ms))
        caller = Caller(identity.user, identity.method, "page", request.remote)
        try:
            result = self.service.run(query, caller, lang)
        except BadLookup as exc:
            text = search_page(lang, identity.user, params, zone, now_ms, error=str(exc))
            return _html(400, text)
        return _html(200, search_page(lang, identity.user, params, zone, now_ms, result))

    def login(self, request: Request) -> Response:
        """`POST /lookup/login` with a token, or user name and password: sets the session."""
        if request.method != "POST":
            return Response(303, b"", headers={"Location": "../lookup", **_PRIVATE})
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        lang = _lang(form.get("lang", ""), request.headers.get("accept-language", ""))
        if not self._same_origin(request):
            self._refused(request, "cross-origin sign-in")
            return _html(401, login_page(lang, failed=True), self._challenge(page=True))
        try:
            identity, sid, reason = self.access.sign_in(form, request.remote)
        except SignInsThrottled as exc:
            return _html(429, login_page(lang, failed=True), self._throttled(request, exc))
        if identity is None:
            self._refused(request, reason)
            return _html(401, login_page(lang, failed=True), self._challenge(page=True))
        log.info("lookup sign-in", extra={"user": identity.user, "remote": request.remote})
        max_age = int(self.access.sessions.ttl_s)
        return Response(
            303,
            b"",
            headers={
                "Location": f"../lookup?lang={lang}",
                **_PRIVATE,
                **self._cookie(sid, max_age),
            },
        )

    def logout(self, request: Request) -> Response:
        """`POST /lookup/logout`: ends the session."""
        if request.method == "POST" and self._same_origin(request):
            sid = session_id(request.headers.get("cookie", ""))
            if sid:
                self.access.sessions.drop(sid)
        return Response(
            303, b"", headers={"Location": "../lookup", **_PRIVATE, **self._cookie("", 0)}
        )


def build_lookup(settings: LookupSettings, store: Store) -> LookupRoutes:
    """The lookup's routes over a store (raises ConfigError for a bad tokens file); `mount`
    them on the web server, which also lends its web config's basic auth."""
    access = Access(
        TokenFile(settings.tokens_file),
        settings.basic_auth_users,
        None,
        Sessions(settings.session_ttl_ms / 1000),
    )
    history = AlertHistory(settings.prometheus) if settings.prometheus else None
    return LookupRoutes(LookupService(store, settings, history), access)
