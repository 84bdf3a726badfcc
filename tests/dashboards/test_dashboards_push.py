"""`smswatch dashboards push`: exact Grafana endpoints and payloads, ownership, and one clear
error line (exit 1) for every way Grafana can fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from exporter import __version__, cli
from exporter.dashboards import generate

URL = "http://grafana.test:3000"
TOKEN = "glsa_test_token"
UIDS = list(generate.BUILDERS)


@pytest.fixture
def grafana(monkeypatch: pytest.MonkeyPatch) -> Iterator[responses.RequestsMock]:
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _push(*extra: str, url: str = URL) -> int:
    return cli.main(["dashboards", "push", "--grafana.url", url, *extra])


def _empty_grafana(mock: responses.RequestsMock, base: str = URL) -> None:
    mock.get(f"{base}/api/folders/smswatch", status=404, json={"message": "folder not found"})
    mock.post(f"{base}/api/folders", json={"uid": "smswatch", "title": "SMS notifications"})
    mock.get(f"{base}/api/datasources", json=[])
    mock.post(f"{base}/api/datasources", json={"message": "Datasource added"})
    for uid in UIDS:
        mock.get(f"{base}/api/dashboards/uid/{uid}", status=404, json={"message": "not found"})
    mock.post(f"{base}/api/dashboards/db", json={"status": "success"})


def _existing(uid: str, tags: list[str], **meta: Any) -> dict[str, Any]:
    return {
        "dashboard": {"uid": uid, "title": f"Dashboard {uid}", "tags": tags, "version": 3},
        "meta": {"folderUid": "smswatch", "provisioned": False, **meta},
    }


def _body(call: Any) -> Any:
    return json.loads(call.request.body)


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith("smswatch: error: ")
    return err.strip()


def test_push_to_an_empty_grafana_creates_everything(
    grafana: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    _empty_grafana(grafana)
    assert _push("--prometheus.url", "http://prom.test:9090") == 0

    calls = [(c.request.method, c.request.url) for c in grafana.calls]
    assert calls == [
        ("GET", f"{URL}/api/folders/smswatch"),
        ("POST", f"{URL}/api/folders"),
        ("GET", f"{URL}/api/datasources"),
        ("POST", f"{URL}/api/datasources"),
        *[("GET", f"{URL}/api/dashboards/uid/{uid}") for uid in UIDS],
        *[("POST", f"{URL}/api/dashboards/db")] * 3,
    ]
    for call in grafana.calls:
        assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert call.request.headers["User-Agent"] == f"smswatch/{__version__}"
        assert call.request.req_kwargs["timeout"] == 10.0
    assert _body(grafana.calls[1]) == {"uid": "smswatch", "title": "SMS notifications"}
    assert _body(grafana.calls[3]) == {
        "name": "Prometheus",
        "uid": "prometheus",
        "type": "prometheus",
        "access": "proxy",
        "url": "http://prom.test:9090",
        "isDefault": True,
        "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
    }
    expected = generate.dashboards()
    for call, uid in zip(grafana.calls[-3:], UIDS, strict=True):
        assert _body(call) == {
            "dashboard": expected[uid],
            "folderUid": "smswatch",
            "overwrite": True,
            "message": f"Pushed by smswatch {__version__}",
        }
    out = capsys.readouterr().out
    assert "folder smswatch: created" in out
    assert "datasource Prometheus: created (http://prom.test:9090)" in out
    for uid in UIDS:
        assert f"dashboard {uid}: created" in out


def test_push_overwrites_its_own_dashboards_and_keeps_existing_folder_and_datasource(
    grafana: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    grafana.get(f"{URL}/api/folders/smswatch", json={"uid": "smswatch"})
    grafana.get(
        f"{URL}/api/datasources",
        json=[{"name": "Mimir", "type": "prometheus", "isDefault": True}],
    )
    for uid in UIDS:
        grafana.get(f"{URL}/api/dashboards/uid/{uid}", json=_existing(uid, ["smswatch", "sms"]))
    grafana.post(f"{URL}/api/dashboards/db", json={"status": "success"})

    assert _push() == 0

    methods = [(c.request.method, c.request.url) for c in grafana.calls]
    assert ("POST", f"{URL}/api/folders") not in methods
    assert ("POST", f"{URL}/api/datasources") not in methods
    assert methods.count(("POST", f"{URL}/api/dashboards/db")) == 3
    out = capsys.readouterr().out
    assert "a Prometheus datasource exists" in out
    assert all(f"dashboard {uid}: updated" in out for uid in UIDS)


def test_created_datasource_is_not_default_when_another_is(
    grafana: responses.RequestsMock,
) -> None:
    _empty_grafana(grafana)
    grafana.replace(
        responses.GET,
        f"{URL}/api/datasources",
        json=[{"name": "Loki", "type": "loki", "isDefault": True}],
    )
    assert _push() == 0
    (create,) = [c for c in grafana.calls if c.request.url == f"{URL}/api/datasources"][1:]
    assert _body(create)["isDefault"] is False
    assert _body(create)["url"] == "http://prometheus:9090"


def test_push_refuses_a_dashboard_it_did_not_make(
    grafana: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    _empty_grafana(grafana)
    grafana.replace(
        responses.GET,
        f"{URL}/api/dashboards/uid/smswatch-oncall",
        json=_existing("smswatch-oncall", ["team-payments"]),
    )
    assert _push() == 1
    line = _error_line(capsys)
    assert "dashboard smswatch-oncall ('Dashboard smswatch-oncall') exists" in line
    assert "not made by smswatch" in line and "--force" in line
    posted = [c for c in grafana.calls if c.request.url == f"{URL}/api/dashboards/db"]
    assert posted == [], "nothing uploaded when one dashboard is not ours"


def test_force_replaces_a_dashboard_it_did_not_make(
    grafana: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    _empty_grafana(grafana)
    grafana.replace(
        responses.GET,
        f"{URL}/api/dashboards/uid/smswatch-oncall",
        json=_existing("smswatch-oncall", []),
    )
    assert _push("--force") == 0
    assert "dashboard smswatch-oncall: replaced (--force)" in capsys.readouterr().out
    posted = [c for c in grafana.calls if c.request.url == f"{URL}/api/dashboards/db"]
    assert [_body(c)["dashboard"]["uid"] for c in posted] == UIDS


def test_push_refuses_a_provisioned_dashboard(
    grafana: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    _empty_grafana(grafana)
    grafana.replace(
        responses.GET,
        f"{URL}/api/dashboards/uid/smswatch-overview",
        json=_existing("smswatch-overview", ["smswatch"], provisioned=True),
    )
    assert _push("--force") == 1
    assert "provisioned from files" in _error_line(capsys)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "rejected the token (401 Unauthorized): set GRAFANA_TOKEN or --grafana.token-file"),
        (403, "does not allow the token to read folder smswatch (403 Forbidden)"),
        (404, "has no GET /api/folders/smswatch (404"),
        (500, "failed to read folder smswatch (HTTP 500): database is locked"),
        (503, "failed to read folder smswatch (HTTP 503): database is locked"),
    ],
)
def test_http_errors_are_one_clear_line(
    grafana: responses.RequestsMock,
    capsys: pytest.CaptureFixture[str],
    status: int,
    expected: str,
) -> None:
    if status == 404:
        # A 404 on the folder means "no folder"; the wrong-URL 404 shows on the next call.
        grafana.get(f"{URL}/api/folders/smswatch", status=404, body="<html>Not Found</html>")
        grafana.post(f"{URL}/api/folders", status=404, body="<html>Not Found</html>")
        expected = "has no POST /api/folders (404 Not Found): is --grafana.url the root URL"
    else:
        grafana.get(
            f"{URL}/api/folders/smswatch",
            status=status,
            json={"message": "database is locked\n(retry)" if status >= 500 else "no"},
        )
    assert _push() == 1
    line = _error_line(capsys)
    assert expected in line
    assert URL in line


def test_a_refused_save_names_the_dashboard(
    grafana: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    _empty_grafana(grafana)
    grafana.replace(
        responses.POST,
        f"{URL}/api/dashboards/db",
        status=412,
        json={"message": "A dashboard with the same name in the folder already exists"},
    )
    assert _push() == 1
    line = _error_line(capsys)
    assert "refused to save dashboard smswatch-overview (HTTP 412)" in line
    assert "same name in the folder already exists" in line


def test_unreachable_grafana(
    grafana: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    grafana.get(
        f"{URL}/api/folders/smswatch",
        body=requests.exceptions.ConnectionError(
            "HTTPConnectionPool(host='grafana.test', port=3000): Max retries exceeded "
            "(Caused by NewConnectionError(': Failed to establish a new connection: "
            "[Errno 111] Connection refused'))"
        ),
    )
    assert _push() == 1
    assert _error_line(capsys) == (
        f"smswatch: error: cannot reach Grafana at {URL}: connection refused"
    )


def test_request_timeout(
    grafana: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    grafana.get(f"{URL}/api/folders/smswatch", body=requests.exceptions.ReadTimeout("slow"))
    assert _push("--grafana.timeout", "2500ms") == 1
    assert _error_line(capsys) == (
        f"smswatch: error: Grafana at {URL} did not answer within 2.5s (GET /api/folders/smswatch)"
    )
    assert grafana.calls[0].request.req_kwargs["timeout"] == 2.5


def test_non_json_answer_means_wrong_url(
    grafana: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    grafana.get(f"{URL}/api/folders/smswatch", body="<html>login</html>")
    assert _push() == 1
    assert "something other than JSON: is --grafana.url the root URL" in _error_line(capsys)


def test_grafana_under_a_sub_path(grafana: responses.RequestsMock) -> None:
    base = "https://example.test/grafana"
    _empty_grafana(grafana, base)
    assert _push(url=base + "/") == 0
    assert grafana.calls[0].request.url == f"{base}/api/folders/smswatch"


def test_token_from_file_wins_over_the_environment(
    grafana: responses.RequestsMock, tmp_path: Path
) -> None:
    _empty_grafana(grafana)
    token_file = tmp_path / "token"
    token_file.write_text("glsa_from_file\n", encoding="utf-8")
    assert _push("--grafana.token-file", str(token_file)) == 0
    assert grafana.calls[0].request.headers["Authorization"] == "Bearer glsa_from_file"


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, "error: no Grafana token: set GRAFANA_TOKEN or pass --grafana.token-file"),
        (["--grafana.token-file", "/nonexistent/token"], {}, "--grafana.token-file: cannot read"),
        (["--grafana.timeout", "soon"], {"GRAFANA_TOKEN": "t"}, "--grafana.timeout"),
    ],
)
def test_usage_errors_exit_2_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with responses.RequestsMock() as mock:  # any request would fail the test
        assert _push(*args) == 2
        assert not mock.calls
    assert expected in _error_line(capsys)


def test_bad_url_is_a_usage_error(
    grafana: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _push(url="grafana.test:3000") == 2
    assert "--grafana.url: not an http(s) URL" in _error_line(capsys)
