"""The exporter's HTTP surface: the server and its routes (`server`), connections with TLS,
deadlines and a bound (`connections`), the exporter-toolkit web config (`settings`), its basic
auth (`basic_auth`) and the back-off on failed sign-ins (`throttle`)."""

from exporter.web.connections import ConnectionLimits
from exporter.web.server import MAX_BODY_BYTES, Admission, Request, Response, Route, WebServer
from exporter.web.settings import WebConfig, load_web_config
from exporter.web.throttle import SignInsThrottled, SignInThrottle

__all__ = [
    "MAX_BODY_BYTES",
    "Admission",
    "ConnectionLimits",
    "Request",
    "Response",
    "Route",
    "SignInThrottle",
    "SignInsThrottled",
    "WebConfig",
    "WebServer",
    "load_web_config",
]
