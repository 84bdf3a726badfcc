"""Who may look up through the exporter: basic auth of the web config (only the users named in
`lookup.basic_auth_users`), tokens, page sessions; `/metrics` open or guarded on its own."""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from exporter.app import Exporter
from exporter.config import parse_config, simulator_config_document
from exporter.lookup.access import new_token
from exporter.web import SignInThrottle

from harness import spy_on_bcrypt


def config(tmp_path: Path, lookup: dict[str, Any] | None) -> Any:
    doc: dict[str, Any] = simulator_config_document("http://127.0.0.1:9", "1h")  # never reached
    if lookup is not None:
        doc["lookup"] = lookup
    return parse_config(
        doc, state_path=str(tmp_path / "state.sqlite"), source_file=str(tmp_path / "c.yaml")
    )


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def fetch(
    url: str,
    *,
    basic: tuple[str, str] | None = None,
    bearer: str = "",
    cookie: str = "",
    form: dict[str, str] | None = None,
) -> tuple[int, str, Any]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data)
    if basic:
        request.add_header(
            "Authorization", "Basic " + base64.b64encode(":".join(basic).encode()).decode()
        )
    if bearer:
        request.add_header("Authorization", f"Bearer {bearer}")
    if cookie:
        request.add_header("Cookie", cookie)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), exc.headers


def web_config(path: Path, users: dict[str, str]) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "basic_auth_users": {
                    user: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode()
                    for user, pw in users.items()
                }
            }
        )
    )


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """An exporter whose web config has a scrape user and an agent; the agent may look up."""
    web = tmp_path / "web.yml"
    web_config(web, {"prometheus": "scrape-pw", "dora": "agent-pw"})
    token, digest = new_token()
    (tmp_path / "tokens.yml").write_text(
        yaml.safe_dump({"tokens": [{"name": "erin", "sha256": digest}]})
    )
    exporter = Exporter(
        config(tmp_path, {"basic_auth_users": ["dora"], "tokens_file": "tokens.yml"}),
        "127.0.0.1",
        0,
        web_config_file=str(web),
    )
    exporter.web.start()
    try:
        yield f"http://127.0.0.1:{exporter.port}", web, token
    finally:
        exporter.web.stop()
        exporter.store.close()


def test_only_named_web_config_users_may_look_up(guarded: tuple[str, Path, str]) -> None:
    base, _, token = guarded
    api = f"{base}/api/v1/receipts?rrn=000000000000"
    assert fetch(f"{base}/metrics")[0] == 401  # the web config guards /metrics as before
    assert fetch(f"{base}/metrics", basic=("prometheus", "scrape-pw"))[0] == 200
    assert fetch(api, basic=("prometheus", "scrape-pw"))[0] == 401  # scraping ≠ looking up
    assert fetch(api, basic=("dora", "wrong"))[0] == 401
    assert fetch(api)[0] == 401
    status, body, _ = fetch(api, basic=("dora", "agent-pw"))
    assert status == 200 and '"count": 0' in body
    assert "Basic" in fetch(api)[2]["WWW-Authenticate"]
    assert fetch(api, bearer=token)[0] == 200  # tokens work beside basic auth
    assert fetch(f"{base}/lookup", basic=("dora", "agent-pw"))[0] == 200


def test_a_page_session_ends_when_its_password_changes(guarded: tuple[str, Path, str]) -> None:
    base, web, _ = guarded
    status, _, headers = fetch(
        f"{base}/lookup/login", form={"username": "dora", "password": "agent-pw", "lang": "en"}
    )
    assert status == 303 and headers["Location"] == "../lookup?lang=en"
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    status, page, headers = fetch(f"{base}/lookup?rrn=000000000000", cookie=cookie)
    assert status == 200 and "Signed in as dora" in page
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"
    assert fetch(f"{base}/lookup/login", form={"username": "dora", "password": "nope"})[0] == 401
    web_config(web, {"prometheus": "scrape-pw", "dora": "new-pw"})  # re-read on change
    assert fetch(f"{base}/lookup", cookie=cookie)[0] == 401
    status, _, headers = fetch(f"{base}/lookup/logout", cookie=cookie, form={})
    assert status == 303 and "Max-Age=0" in headers["Set-Cookie"]


def test_metrics_stay_open_while_lookups_need_credentials(tmp_path: Path) -> None:
    exporter = Exporter(config(tmp_path, None), "127.0.0.1", 0)
    exporter.web.start()
    try:
        base = f"http://127.0.0.1:{exporter.port}"
        assert fetch(f"{base}/metrics")[0] == 200
        assert fetch(f"{base}/api/v1/receipts?rrn=1")[0] == 401  # nobody is configured
        status, page, _ = fetch(f"{base}/lookup")
        assert status == 401 and 'name="token"' in page and "Signed in" not in page
        assert fetch(f"{base}/lookup/login", form={"token": "smsw_x"})[0] == 401
    finally:
        exporter.web.stop()
        exporter.store.close()


def test_a_bad_tokens_file_stops_the_exporter_with_a_config_error(tmp_path: Path) -> None:
    from exporter.errors import ConfigError

    (tmp_path / "tokens.yml").write_text("tokens:\n  - {name: eve, sha256: short}\n")
    with pytest.raises(ConfigError, match=r"tokens\.yml: tokens\[0\]: sha256 must be 64 hex"):
        Exporter(config(tmp_path, {"tokens_file": "tokens.yml"}), "127.0.0.1", 0)


def test_the_page_explains_bad_input(guarded: tuple[str, Path, str]) -> None:
    base, _, _ = guarded
    dora = ("dora", "agent-pw")
    status, page, _ = fetch(f"{base}/lookup?terminal=T1&at=2026-11-25T12:00&window=5h", basic=dora)
    assert status == 400 and "Cannot search like this" in page and "too wide" in page
    status, page, _ = fetch(f"{base}/lookup?rrn=1&rrn=2", basic=dora)
    assert status == 400 and "give each parameter once" in page
    status, page, _ = fetch(f"{base}/lookup?rrn=000000000000&lang=zh", basic=dora)
    assert status == 200 and "未找到交易" in page and 'lang="zh-Hans"' in page


def test_the_page_asks_for_its_own_sign_in_not_the_browser_dialog(
    guarded: tuple[str, Path, str],
) -> None:
    base, _, _ = guarded
    status, page, headers = fetch(f"{base}/lookup")
    assert status == 401 and 'name="token"' in page and 'name="password"' in page
    assert "Basic" not in headers["WWW-Authenticate"]  # a Basic challenge pops up a dialog


def test_failed_sign_ins_on_the_page_and_the_api_back_off_together(
    guarded: tuple[str, Path, str],
) -> None:
    """Guessing tokens on the API and passwords on the sign-in form counts against one back-off
    per address: past the free failures even the right credentials wait (429, Retry-After)."""
    base, _, token = guarded
    api = f"{base}/api/v1/receipts?rrn=000000000000"
    login = f"{base}/lookup/login"
    free = SignInThrottle().free_failures
    for i in range(free):
        if i % 2:
            assert fetch(api, bearer=f"smsw_guess{i}")[0] == 401
        else:
            assert fetch(login, form={"username": "dora", "password": f"guess{i}"})[0] == 401
    assert fetch(api, basic=("dora", "guess"))[0] == 401  # the first failure past the free ones
    status, _, headers = fetch(api, bearer=token)
    assert status == 429 and int(headers["Retry-After"]) >= 1
    status, page, _ = fetch(login, form={"username": "dora", "password": "agent-pw"})
    assert status == 429 and 'name="password"' in page
    assert fetch(f"{base}/metrics", basic=("prometheus", "scrape-pw"))[0] == 429  # one address


def test_who_may_look_up_does_not_show_in_the_cost_of_a_refusal(
    guarded: tuple[str, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _, _ = guarded
    checked = spy_on_bcrypt(monkeypatch)
    api = f"{base}/api/v1/receipts?rrn=000000000000"
    for user in ("nobody", "prometheus", "dora"):  # unknown, not allowed, allowed
        assert fetch(api, basic=(user, "guess"))[0] == 401
    assert len(checked) == 3 and {h[:7] for h in checked} == {b"$2b$04$"}
