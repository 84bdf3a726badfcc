"""The simulator's generic feeds served in-process to the real HTTP client.

A `requests` transport adapter mounted on a poller's session: each request goes through the
exporter's own `SourceClient` (retries, error kinds, JSON decoding) and the simulator's own
answer (`server.answer_feed`, `api_errors` faults included), without a socket or a thread.
A `slow` answer does not wait: it times out when it is slower than the client's read timeout.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from exporter.simulator.server import FEEDS, FeedAnswer, answer_feed
from exporter.simulator.simulation import Simulation

#: The base URL the backtest's sources poll; `.invalid` never resolves, so a request that
#: escaped the adapter would fail loudly instead of reaching a network.
BASE_URL = "http://simulator.backtest.invalid"


class SimulatorAdapter(BaseAdapter):
    """Answers GETs of the simulator's feeds from a `Simulation` in this process."""

    def __init__(self, simulation: Simulation) -> None:
        super().__init__()
        self.simulation = simulation

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
        verify: bool | str = True,
        cert: object = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """One request, answered by the simulation at its current simulated time."""
        url = urlsplit(request.url or "")
        if request.method != "GET" or url.path not in FEEDS:
            answer = FeedAnswer(404, b'{"error": "no such endpoint in the backtest"}')
        else:
            answer = answer_feed(self.simulation, url.path, url.query)
        read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        if answer.delay_ms and read_timeout is not None and answer.delay_ms > read_timeout * 1000:
            raise requests.ReadTimeout("simulated slow answer", request=request)
        response = requests.Response()
        response.status_code = answer.status
        response.raw = io.BytesIO(answer.body)  # read as a socket's body is: streamed, capped
        response.headers = CaseInsensitiveDict(
            {"Content-Type": "application/json", **answer.headers}
        )
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        """Nothing to release."""


def mount(session: requests.Session, simulation: Simulation) -> None:
    """Route the session's requests to `BASE_URL` to the simulation (and skip the proxy and
    netrc look-ups in the environment, which no in-process request needs)."""
    session.trust_env = False
    session.mount(BASE_URL, SimulatorAdapter(simulation))
