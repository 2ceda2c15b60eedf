"""Who may use the app: a non-loopback bind starts only with a login (st.login OIDC or a trusted proxy
header) or SPOTTING_ALLOW_ANONYMOUS=1 (then with a banner); the media routes ask the same; every
decision records its editor, into the Review page, the CSV and Labels-v2.json, and one editor's undo
never silently undoes another's."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from serve import ROOT, app_env, command, free_port, get, running_app
from streamlit import config
from streamlit.testing.v1 import AppTest

from pages.support import access
from spotting_core.io.tables import write_results
from spotting_core.review.matches import Match
from spotting_core.review.store import ReviewStore

APP = str(ROOT / "app.py")
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


@pytest.fixture()
def folders(tmp_path):
    media, cache = tmp_path / "media", tmp_path / "cache"
    (cache / "demo").mkdir(parents=True)
    (cache / "demo" / "1_demo.mp4").write_bytes(VIDEO)
    media.mkdir()
    return {"media": media, "cache": cache,
            "env": app_env(SPOTTING_CACHE=str(cache), SPOTTING_MEDIA_ROOT=str(media))}


def _refused(env: dict, *extra: str, address: str = "0.0.0.0") -> subprocess.CompletedProcess:
    r = subprocess.run(command(free_port(), address, *extra), cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=90)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and len(errors) == 1, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    return r


def test_loopback_addresses():
    for address in ("127.0.0.1", "127.8.0.1", "localhost", "::1", "[::1]", "unix:///tmp/s"):
        assert access.is_loopback(address), address
    for address in ("0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "review.example.org", ""):
        assert not access.is_loopback(address), address


def test_a_non_loopback_bind_without_a_login_refuses_to_start(folders):
    r = _refused(folders["env"])
    line = next(x for x in r.stderr.splitlines() if x.startswith("error:"))
    for named in ("0.0.0.0", "server.address", ".streamlit/secrets.toml", "SPOTTING_TRUSTED_USER_HEADER",
                  "SPOTTING_ALLOW_ANONYMOUS=1"):
        assert named in line, named
    _refused(dict(folders["env"], STREAMLIT_SERVER_ADDRESS="0.0.0.0"), address="0.0.0.0")  # from the environment too
    _refused(dict(folders["env"], SPOTTING_ALLOW_ANONYMOUS="0"))  # only an explicit yes opens it


def test_anonymous_override_starts_and_shows_the_banner(folders, monkeypatch):
    env = dict(folders["env"], SPOTTING_ALLOW_ANONYMOUS="1")
    with running_app(env, address="0.0.0.0") as app:
        status, _, body = get(f"{app.base}/media-files/cache/demo/1_demo.mp4", {"Range": "bytes=0-9"})
        assert status == 206 and body == VIDEO[:10]
        assert get(f"{app.base}/media-files/cache/review.sqlite")[0] == 404
    # the same app, as a session of that server sees it: the banner above every page
    for key, value in (("SPOTTING_CACHE", folders["cache"]), ("SPOTTING_MEDIA_ROOT", folders["media"]),
                       ("SPOTTING_AUTOLOAD_DEMO", "0"), ("SPOTTING_ALLOW_ANONYMOUS", "1")):
        monkeypatch.setenv(key, str(value))
    monkeypatch.delenv("SPOTTING_TRUSTED_USER_HEADER", raising=False)
    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(APP, default_timeout=120).run()
        assert not at.exception, at.exception
        assert any("Open to anyone" in str(w.value) and "SPOTTING_ALLOW_ANONYMOUS=1" in str(w.value)
                   for w in at.warning), [w.value for w in at.warning]
        monkeypatch.delenv("SPOTTING_ALLOW_ANONYMOUS")
        at = AppTest.from_file(APP, default_timeout=120).run()  # a session of a server that should not run
        assert "not starting" in " ".join(str(e.value) for e in at.error) and "match" not in at.session_state
        config.set_option("server.address", "127.0.0.1")
        at = AppTest.from_file(APP, default_timeout=120).run()
        assert not at.exception and not any("Open to anyone" in str(w.value) for w in at.warning)
    finally:
        config.set_option("server.address", before)


def test_behind_a_proxy_the_media_routes_want_its_user_header(folders):
    env = dict(folders["env"], SPOTTING_TRUSTED_USER_HEADER="X-Forwarded-User")
    with running_app(env, address="0.0.0.0") as app:
        url = f"{app.base}/media-files/cache/demo/1_demo.mp4"
        assert get(url)[0] == 401
        assert get(url, {"X-Forwarded-User": ""})[0] == 401
        assert get(url, {"X-Forwarded-User": "alice"})[0] == 200
        assert get(f"{app.base}/media-files/cache/review.sqlite", {"X-Forwarded-User": "alice"})[0] == 404


def _secrets(path: Path, port: int, *, complete: bool = True) -> Path:
    lines = ["[auth]", f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"', 'client_id = "spotting-test"',
             'client_secret = "not-a-secret"', 'server_metadata_url = "http://127.0.0.1:9/.well-known/openid"']
    if complete:
        lines.insert(2, 'cookie_secret = "test-cookie-secret-0123456789abcdef0123456789"')
    path.write_text("\n".join(lines) + "\n")
    return path


def test_with_st_login_it_starts_and_the_media_routes_want_the_signed_cookie(folders, tmp_path):
    from streamlit.web.server.starlette.starlette_app_utils import create_signed_value

    pytest.importorskip("authlib", reason="st.login needs Authlib (requirements.txt)")
    broken = _secrets(tmp_path / "broken.toml", 1, complete=False)
    r = _refused(folders["env"], "--secrets.files", str(broken), address="127.0.0.1")
    assert "cookie_secret" in r.stderr  # a half-configured login is refused on loopback too
    port = free_port()
    secrets = _secrets(tmp_path / "secrets.toml", port)
    env = folders["env"]
    # running_app picks its own port; the redirect_uri's port only matters for a real login
    with running_app(env, address="0.0.0.0", extra=("--secrets.files", str(secrets))) as app:
        url = f"{app.base}/media-files/cache/demo/1_demo.mp4"
        assert get(url)[0] == 401

        def cookie(payload: dict, secret: str = "test-cookie-secret-0123456789abcdef0123456789") -> dict:
            value = create_signed_value(secret, "_streamlit_user", json.dumps(payload)).decode()
            return {"Cookie": f"_streamlit_user={value}"}

        assert get(url, cookie({"is_logged_in": True, "email": "a@x.org"}, secret="guessed"))[0] == 401
        assert get(url, cookie({"is_logged_in": False}))[0] == 401
        assert get(url, cookie({"is_logged_in": True, "email": "a@x.org"}))[0] == 200


# ---------------------------------------------------------------------------------------------
# Editors
# ---------------------------------------------------------------------------------------------
@pytest.fixture()
def review(folders, monkeypatch):
    """A results folder opened in the store; sessions whose proxy sends a user header of our choosing."""
    folder = folders["media"] / "match"
    events = pd.DataFrame({"half": [1, 1, 1, 2, 2], "position_ms": [60_000, 120_000, 180_000, 30_000, 90_000],
                           "label": ["Goal", "Corner", "Foul", "Throw-in", "Offside"],
                           "confidence": [0.9, 0.5, 0.6, 0.7, 0.4]})
    folder.mkdir()
    write_results(folder / "results_spotting.json", events)
    mid = Match(folder=str(folder), name="match").match_id
    ReviewStore(folders["cache"] / "review.sqlite").load_events(mid, events, meta={"name": "match",
                                                                                    "folder": str(folder)})
    for key, value in (("SPOTTING_CACHE", folders["cache"]), ("SPOTTING_MEDIA_ROOT", folders["media"]),
                       ("SPOTTING_AUTOLOAD_DEMO", "0"), ("SPOTTING_TRUSTED_USER_HEADER", "X-Forwarded-User")):
        monkeypatch.setenv(key, str(value))
    monkeypatch.delenv("SPOTTING_ALLOW_ANONYMOUS", raising=False)
    who = {"user": None}
    monkeypatch.setattr(access, "request_headers", lambda: {"x-forwarded-user": who["user"]} if who["user"] else {})

    def session(user: str | None) -> AppTest:
        who["user"] = user
        at = AppTest.from_file(APP, default_timeout=120)
        at.query_params["match"] = mid
        at.run()
        assert not at.exception, at.exception
        at.switch_page("pages/review.py").run()
        assert not at.exception, at.exception
        return at

    def act(at: AppTest, user: str, key: str) -> AppTest:
        who["user"] = user  # the header rides with the session; set it for this session's next run
        at.button(key=key).click().run()
        assert not at.exception, at.exception
        return at

    return {"store": ReviewStore(folders["cache"] / "review.sqlite"), "mid": mid, "session": session, "act": act,
            "who": who}


def _texts(at, kind: str) -> str:
    return " | ".join(str(e.value) for e in getattr(at, kind))


def test_decisions_made_with_a_user_header_carry_that_user_into_the_exports(review):
    store, mid = review["store"], review["mid"]
    alice = review["session"]("alice")
    goal = alice.session_state["event_id"]
    review["act"](alice, "alice", "rv_accept")
    hist = store.history(mid)
    assert list(hist["editor"]) == ["alice"] and list(hist["action"]) == ["accept"]
    rows = {int(r["event_id"]): r for r in csv.DictReader(io.StringIO(store.csv_text(mid)))}
    assert rows[goal]["decided_by"] == "alice" and rows[goal]["status"] == "accepted"
    assert {r["decided_by"] for e, r in rows.items() if e != goal} == {""}
    anns = store.labels_dict(mid)["annotations"]
    assert [(a["label"], a["reviewedBy"]) for a in anns] == [("Goal", "alice")]
    review["act"](alice, "alice", "rv_prev")  # back on the decided event: the page says who decided it
    assert "decided by **alice**" in _texts(alice, "caption")
    assert "alice" in set(alice.dataframe[0].value["decided_by"])
    first = AppTest.from_file(APP, default_timeout=120).run()  # (AppTest keeps the sidebar of a first run only)
    assert "Signed in as **alice**" in _texts(first.sidebar, "caption")

    # a session without the header is stopped before any page: nobody decides anonymously here
    nobody = AppTest.from_file(APP, default_timeout=120)
    review["who"]["user"] = None
    nobody.run()
    assert "X-Forwarded-User" in _texts(nobody, "error") and "match" not in nobody.session_state


def test_a_second_editors_undo_never_silently_undoes_the_first_editors_decision(review):
    store, mid, act = review["store"], review["mid"], review["act"]
    alice = review["session"]("alice")
    goal = alice.session_state["event_id"]
    act(alice, "alice", "rv_accept")
    bob = review["session"]("bob")
    act(bob, "bob", "rv_undo")
    assert "Nothing of yours to undo" in _texts(bob, "error") and "alice" in _texts(bob, "error")
    assert store.event(mid, goal)["status"] == "accepted"  # alice's decision stands
    act(bob, "bob", "rv_reject")
    assert store.event(mid, goal)["status"] == "rejected"
    act(alice, "alice", "rv_undo")  # alice undoes her own accept; bob's later reject stands, and she is told
    assert store.event(mid, goal)["status"] == "rejected"
    assert "Undid accept" in _texts(alice, "toast") and "bob decided on it since" in _texts(alice, "toast")
    assert list(store.history(mid)[["editor", "undone"]].itertuples(index=False, name=None)) == [
        ("alice", 1), ("bob", 0)]
    rows = {int(r["event_id"]): r for r in csv.DictReader(io.StringIO(store.csv_text(mid)))}
    assert rows[goal]["decided_by"] == "bob"


def test_a_st_login_user_is_the_editor_without_a_proxy(review, monkeypatch):
    monkeypatch.delenv("SPOTTING_TRUSTED_USER_HEADER")
    at = AppTest.from_file(APP, default_timeout=120)
    at.user = {"is_logged_in": True, "email": "carol@example.org", "name": "Carol"}
    at.query_params["match"] = review["mid"]
    at.run()
    at.switch_page("pages/review.py").run()
    at.button(key="rv_accept").click().run()
    assert not at.exception, at.exception
    assert list(review["store"].history(review["mid"])["editor"]) == ["carol@example.org"]


@pytest.mark.browser
def test_in_a_browser_the_banner_shows_and_the_proxy_user_is_signed_in(folders):
    """The real thing: headless chromium against the servers (skips without it, as tests/test_browser.py)."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip(f"{chromium} not installed (`make chromium` or apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip playwright is not installed")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=args)
        try:
            with running_app(dict(folders["env"], SPOTTING_ALLOW_ANONYMOUS="1"), address="0.0.0.0") as app:
                page = browser.new_page()
                page.goto(app.base, timeout=60_000)
                page.get_by_text("Open to anyone who can reach this server").wait_for(timeout=60_000)
            env = dict(folders["env"], SPOTTING_TRUSTED_USER_HEADER="X-Forwarded-User")
            with running_app(env, address="127.0.0.1") as app:
                page = browser.new_context(extra_http_headers={"X-Forwarded-User": "dana"}).new_page()
                page.goto(app.base, timeout=60_000)
                page.get_by_text("Signed in as").wait_for(timeout=60_000)
                assert "dana" in page.locator('[data-testid="stSidebar"]').inner_text()
                bare = browser.new_page()
                bare.goto(app.base, timeout=60_000)
                bare.get_by_text("this request has none").wait_for(timeout=60_000)
        finally:
            browser.close()
