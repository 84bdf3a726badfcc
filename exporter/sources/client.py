"""The shared HTTP client of all sources: timeouts, retries with backoff, `Retry-After`, deadline.

Every failed attempt is reported through `on_error(kind)` with a `smswatch_source_errors_total`
error kind, so flaky upstreams show up even when a retry saves the poll.

Credentials (auth headers, basic auth, a custom auth header, request signatures) go only to the
source's own origin (scheme, host and port of `base_url`): redirects are followed here, not by
`requests`, and a hop to another origin is sent without them; an absolute next-page link to
another origin is refused. Bodies are streamed and abandoned as soon as they pass the size cap.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from exporter import __version__
from exporter.config import SourceConfig
from exporter.errors import SourceError
from exporter.privacy import remember_secret

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_REDIRECTS = 5
_CHUNK_BYTES = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


class BadPayload(ValueError):
    """A response body that is not the JSON shape the source expects."""


class _BodyTooLarge(Exception):
    """The body passed the cap while streaming: the connection is dropped."""


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, the default port made explicit: what credentials follow."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


@dataclass(frozen=True)
class Reply:
    """A decoded JSON answer and the upstream's clock when it answered (its `Date` header)."""

    payload: Any
    date_ms: int | None  # Unix ms, second precision; None without a usable Date header


#: Signs one attempt of a request: (method, params, body) → (params, extra headers).
Signer = Callable[[str, dict[str, str | int], bytes], tuple[dict[str, str | int], dict[str, str]]]


def decode_json(body: bytes) -> Any:
    """A response body decoded as JSON (the one decoder every source's pages go through)."""
    return json.loads(body)


def date_header_ms(value: str | None) -> int | None:
    """Unix ms of an HTTP `Date` header, or None."""
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp()) * 1000
    except (TypeError, ValueError, IndexError):
        return None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


class SourceClient:
    """GETs JSON from one source's base URL with its auth, timeouts and retry policy."""

    def __init__(
        self,
        source: SourceConfig,
        on_error: Callable[[str], None],
        stop: threading.Event | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.source = source
        self.on_error = on_error
        self.stop = stop or threading.Event()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"smswatch/{__version__}"
        self.session.headers["Accept"] = "application/json"
        self.max_body_bytes = MAX_BODY_BYTES
        self.origin = origin(source.base_url)
        #: Sent only to `self.origin` (never set on the session, so no redirect carries them).
        self.credentials: dict[str, str] = {}
        auth = source.auth
        if auth.type == "bearer":
            self.credentials["Authorization"] = f"Bearer {auth.secret}"
        elif auth.type == "basic":
            pair = f"{auth.username}:{auth.secret}".encode()
            self.credentials["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif auth.type == "header":
            self.credentials[auth.header] = auth.secret
        remember_secret(auth.secret)
        if auth.type in ("basic", "aliyun", "tencent"):
            remember_secret(auth.username)  # an API key id: an identifier, but a credential

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def fail(self, kind: str, message: str) -> SourceError:
        self.on_error(kind)
        log.warning(
            "request failed", extra={"source": self.source.name, "error": kind, "detail": message}
        )
        return SourceError(self.source.name, kind, message)

    def get_json(self, path: str, params: Mapping[str, str | int], deadline: float) -> Any:
        """GET `path` and decode JSON, retrying transient failures until `deadline` (monotonic).

        Raises `SourceError` with the error kind of the last failure.
        """
        return self.request("GET", path, params, deadline).payload

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int],
        deadline: float,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        sign: Signer | None = None,
        retry_timeouts: bool = True,
    ) -> Reply:
        """One request with the retry policy; `sign` signs each attempt afresh (its own time).

        `retry_timeouts=False` is for consuming reads (a request that timed out may have
        consumed data upstream: a blind retry would hide the loss).
        """
        url = path if path.startswith(("http://", "https://")) else self.source.base_url + path
        if origin(url) != self.origin:
            raise self.fail(
                "bad_payload", f"refusing a link to another host than {self.source.base_url}"
            )
        attempts = self.source.retries + 1
        last: SourceError | None = None
        for attempt in range(attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stop.is_set():
                break
            wait_s = self.source.backoff_ms / 1000 * (2**attempt)
            query, extra = dict(params), {**self.credentials, **(headers or {})}
            if sign is not None:
                query, signed = sign(method, query, body)
                extra.update(signed)
            timeout = (
                min(self.source.connect_timeout_s, remaining),
                min(self.source.read_timeout_s, remaining),
            )
            try:
                response, content = self._send(method, url, query, body, extra, timeout)
            except requests.Timeout as exc:
                last = self.fail("timeout", str(exc))
            except requests.ConnectionError as exc:
                if "timed out" in str(exc).lower():  # a read timeout while reading the body
                    last = self.fail("timeout", str(exc))
                else:
                    last = self.fail("connection", str(exc))
            except requests.RequestException as exc:
                last = self.fail("connection", str(exc))
            except _BodyTooLarge as exc:
                raise self.fail("bad_payload", str(exc)) from exc
            else:
                result, last, retry_wait = self._handle(response, content)
                if last is None:
                    return Reply(result, date_header_ms(response.headers.get("Date")))
                if retry_wait is not None:
                    wait_s = max(wait_s, retry_wait)
                if not _retryable(last.kind):
                    raise last
            if last is not None and last.kind == "timeout" and not retry_timeouts:
                raise last
            if attempt + 1 < attempts:
                if time.monotonic() + wait_s >= deadline:
                    break
                if self.stop.wait(wait_s):
                    break
        if last is None:
            last = SourceError(self.source.name, "timeout", "poll deadline reached")
            self.on_error("timeout")
        raise last

    def _send(
        self,
        method: str,
        url: str,
        query: Mapping[str, str | int],
        body: bytes,
        headers: dict[str, str],
        timeout: tuple[float, float],
    ) -> tuple[requests.Response, bytes]:
        """One attempt, following redirects by hand: credentials stay with the source's origin.

        Returns the final response and its body, read up to the cap (`_BodyTooLarge` past it).
        """
        params: Mapping[str, str | int] | None = query
        data: bytes | None = body or None
        for _ in range(MAX_REDIRECTS + 1):
            response = self.session.request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            )
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response, self._read(response)
            response.close()
            url, params = urljoin(response.url, location), None
            if response.status_code == 303:
                method, data = "GET", None
            if origin(url) != self.origin:
                # Another host: no credential, no signature, nothing of ours goes with it.
                headers = {}
        raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    def _read(self, response: requests.Response) -> bytes:
        """The body, streamed: dropped as soon as it passes `max_body_bytes`."""
        cap = self.max_body_bytes
        try:
            declared = int(response.headers.get("Content-Length", "0") or 0)
        except ValueError:
            declared = 0
        if declared > cap:
            response.close()
            raise _BodyTooLarge(f"response body of {declared} bytes is over {cap} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK_BYTES):
            size += len(chunk)
            if size > cap:
                response.close()
                raise _BodyTooLarge(f"response body is over {cap} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _handle(
        self, response: requests.Response, body: bytes
    ) -> tuple[Any, SourceError | None, float | None]:
        status = response.status_code
        if status == 429:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            return None, self.fail("throttled", f"HTTP 429, Retry-After={wait}"), wait
        if status >= 500:
            return None, self.fail("http_5xx", f"HTTP {status}"), None
        if status >= 400:
            return None, self.fail("http_4xx", f"HTTP {status}"), None
        try:
            return decode_json(body), None, None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return None, self.fail("bad_payload", f"not JSON: {exc}"), None


def _retryable(kind: str) -> bool:
    return kind != "http_4xx"
