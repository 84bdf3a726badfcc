"""The exporter's HTTP server: routes, TLS and basic auth from an exporter-toolkit web config.

`--web.config.file` takes the same YAML as Go exporters (prometheus/exporter-toolkit):
`tls_server_config` (`cert_file`, `key_file`, `client_auth_type`, `client_ca_file`) and
`basic_auth_users` (user → bcrypt hash). The file is re-read when it changes.
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from exporter.errors import ConfigError

log = logging.getLogger(__name__)

_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


@dataclass(frozen=True)
class Request:
    """What a route sees of an HTTP request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    user: str = ""


@dataclass
class Response:
    """What a route answers."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[Request], Response]


@dataclass(frozen=True)
class WebConfig:
    """TLS and basic-auth settings."""

    cert_file: str = ""
    key_file: str = ""
    client_auth_type: str = "NoClientCert"
    client_ca_file: str = ""
    users: dict[str, str] = field(default_factory=dict)


def load_web_config(path: str) -> WebConfig:
    """Read and validate an exporter-toolkit web config file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=path) from exc
    except yaml.YAMLError as exc:
        raise ConfigError("not valid YAML", source=path) from exc
    if not isinstance(raw, dict):
        raise ConfigError("must be a mapping", source=path)
    for key in raw:
        if key not in ("tls_server_config", "basic_auth_users", "http_server_config"):
            raise ConfigError(f"unknown key {key!r}", source=path, path=str(key))
    tls = raw.get("tls_server_config") or {}
    users = raw.get("basic_auth_users") or {}
    if not isinstance(tls, dict):
        raise ConfigError("must be a mapping", source=path, path="tls_server_config")
    if not isinstance(users, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in users.items()
    ):
        raise ConfigError(
            "must map user names to bcrypt hashes", source=path, path="basic_auth_users"
        )
    for user, hashed in users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError("is not a bcrypt hash", source=path, path=f"basic_auth_users.{user}")
    client_auth = str(tls.get("client_auth_type", "NoClientCert"))
    if client_auth not in _CLIENT_AUTH:
        raise ConfigError(
            f"unknown client_auth_type {client_auth!r}",
            source=path,
            path="tls_server_config.client_auth_type",
        )
    base = Path(path).parent

    def _resolve(value: Any) -> str:
        if not value:
            return ""
        p = Path(str(value))
        return str(p if p.is_absolute() else base / p)

    config = WebConfig(
        cert_file=_resolve(tls.get("cert_file")),
        key_file=_resolve(tls.get("key_file")),
        client_auth_type=client_auth,
        client_ca_file=_resolve(tls.get("client_ca_file")),
        users=dict(users),
    )
    if bool(config.cert_file) != bool(config.key_file):
        raise ConfigError(
            "cert_file and key_file go together", source=path, path="tls_server_config"
        )
    return config


class _Auth:
    """Basic auth against bcrypt hashes, re-reading the web config when its file changes."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._mtime = 0.0
        self._config = WebConfig()
        self._cache: dict[tuple[str, str], bool] = {}
        self._lock = threading.Lock()
        if path:
            self._config = load_web_config(path)
            self._mtime = os.stat(path).st_mtime

    @property
    def config(self) -> WebConfig:
        if self.path:
            try:
                mtime = os.stat(self.path).st_mtime
            except OSError:
                return self._config
            if mtime != self._mtime:
                with self._lock:
                    try:
                        self._config = load_web_config(self.path)
                        self._cache.clear()
                    except ConfigError as exc:
                        log.error(
                            "web config reload failed, keeping the previous",
                            extra={"error": str(exc)},
                        )
                    self._mtime = mtime
        return self._config

    def check(self, header: str | None) -> str | None:
        """The authenticated user, "" when no auth is configured, None when refused."""
        users = self.config.users
        if not users:
            return ""
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        hashed = users.get(user)
        if hashed is None:
            return None
        key = (user, password)
        with self._lock:
            if key in self._cache:
                return user if self._cache[key] else None
        import bcrypt

        ok = bcrypt.checkpw(password.encode("utf-8"), hashed.encode("utf-8"))
        with self._lock:
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[key] = ok
        return user if ok else None


class WebServer:
    """A threaded HTTP(S) server with a route table; routes may be added before `start`."""

    def __init__(self, host: str, port: int, web_config_file: str | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.open_paths: set[str] = {"/healthz"}
        self._auth = _Auth(web_config_file)
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "smswatch"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http", extra={"request": format % args})

            def _serve(self) -> None:
                server_self._dispatch(self)

            do_GET = _serve
            do_POST = _serve
            do_HEAD = _serve

        family_host = host
        self._httpd = ThreadingHTTPServer((family_host, port), Handler)
        self._httpd.daemon_threads = True
        config = self._auth.config
        self.tls = bool(config.cert_file)
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(config.cert_file, config.key_file)
            context.verify_mode = _CLIENT_AUTH[config.client_auth_type]
            if config.client_ca_file:
                context.load_verify_locations(config.client_ca_file)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="smswatch-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        if length > 1_048_576:
            self._send(handler, Response(413, b"request body too large\n"))
            return
        body = handler.rfile.read(length) if length else b""
        route = self.routes.get(parts.path)
        user = ""
        if parts.path not in self.open_paths:
            checked = self._auth.check(handler.headers.get("Authorization"))
            if checked is None:
                self._send(
                    handler,
                    Response(
                        401,
                        b"Unauthorized\n",
                        headers={"WWW-Authenticate": 'Basic realm="smswatch"'},
                    ),
                )
                return
            user = checked
        if route is None:
            self._send(handler, Response(404, b"not found\n"))
            return
        request = Request(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            user=user,
        )
        try:
            response = route(request)
        except Exception:
            log.exception("route failed", extra={"path": parts.path})
            response = Response(500, b"internal error\n")
        self._send(handler, response, head=handler.command == "HEAD")

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, response: Response, head: bool = False) -> None:
        try:
            handler.send_response(response.status)
            handler.send_header("Content-Type", response.content_type)
            handler.send_header("Content-Length", str(len(response.body)))
            for key, value in response.headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            if not head:
                handler.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            pass
