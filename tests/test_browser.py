"""One real-browser test: headless Debian chromium (pip playwright) against `streamlit run app.py`.

Opens the demo, clicks an event on the timeline and checks the video time moved, accepts an event,
cuts a reel and fetches it with a Range request, then opens a 90-minute, 17-class match and
measures the time to the first interactive timeline. Screenshots and timings: tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from serve import running_app

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]

pytestmark = pytest.mark.browser

# Where a plotly point of the timeline is on screen, and what the chart holds.
_POINT_JS = """(name) => {
  const gd = document.querySelector('.js-plotly-plot');
  if (!gd || !gd._fullData) { return null; }
  const tr = gd._fullData.find(t => t.name === name);
  if (!tr || !tr.x || tr.x.length === 0) { return null; }
  let i = 0;
  for (let k = 0; k < tr.y.length; k++) { if (tr.y[k] > tr.y[i]) { i = k; } }
  const xa = gd._fullLayout[tr.xaxis === 'x' ? 'xaxis' : 'xaxis' + tr.xaxis.slice(1)];
  const ya = gd._fullLayout[tr.yaxis === 'y' ? 'yaxis' : 'yaxis' + tr.yaxis.slice(1)];
  const r = gd.getBoundingClientRect();
  return {x: r.left + xa._offset + xa.l2p(tr.x[i]), y: r.top + ya._offset + ya.l2p(tr.y[i]),
          ms: tr.customdata ? tr.customdata[i][1] : null};
}"""
_CHART_JS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  if (!gd || !gd._fullData || !gd.querySelector('canvas')) { return null; }
  return {traces: gd._fullData.length, names: gd._fullData.map(t => t.name)};
}"""


def _full_match(folder: Path) -> Path:
    """A 90-minute, 17-class results folder: synthetic per-frame scores, saliency, NMS events, labels."""
    from spotting_core.engine.inference import events_from_scores, nms, write_outputs
    from spotting_core.synth.benchmark import generate

    T, C, W = 45 * 60 * 2, 17, 30
    rng = np.random.default_rng(5)
    arrays, tables = {}, []
    for half in (1, 2):
        noise = rng.standard_normal((T, C)).cumsum(axis=0)
        noise -= np.convolve(noise[:, 0], np.ones(121) / 121, mode="same")[:, None]
        scores = (1 / (1 + np.exp(-(noise / 8 - 2)))).astype(np.float32)            # (T, C) in (0, 1)
        sal = rng.random((T, W)).astype(np.float32)
        arrays[half] = {"scores": scores, "saliency": sal[:, W // 2], "saliency_windows": sal}
        tables.append(events_from_scores(nms(scores, window_s=30, threshold=0.05), half=half))
    import pandas as pd

    write_outputs(folder, pd.concat(tables, ignore_index=True), arrays, url_local="synthetic 90-minute scores")
    bench = generate(folder / "synth", games=3, seed=1, half_minutes=45.0, dim=16)
    info = json.loads((bench / "synth.json").read_text())
    (folder / "Labels-v2.json").write_text((bench / "test" / info["splits"]["test"][0] / "Labels-v2.json").read_text())
    return folder


def _need_browser() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not installed (`make chromium` or apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="pip playwright is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _need_browser()
    from spotting_core.synth.demo import ensure_demo

    cache = ROOT / ".cache" / "test-app"
    media = tmp_path_factory.mktemp("media-browser")
    env = dict(os.environ, SPOTTING_CACHE=str(cache), SPOTTING_MEDIA_ROOT=str(media), SPOTTING_AUTOLOAD_DEMO="1")
    saved = os.environ.get("SPOTTING_CACHE")
    os.environ["SPOTTING_CACHE"] = str(cache)
    try:
        from spotting_core.media.shots import detect_shots

        detect_shots(ensure_demo() / "1_demo.mp4")   # cached beside the video: Highlights snaps at once
    finally:
        if saved is None:
            os.environ.pop("SPOTTING_CACHE")
        else:
            os.environ["SPOTTING_CACHE"] = saved
    _full_match(media / "full_match")
    with running_app(env) as app:
        yield {"base": app.base, "cache": cache, "media": media, "log": str(app.log_path)}


def _wait(page, js: str, arg=None, *, timeout_s: float = 60.0, what: str = ""):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = page.evaluate(js, arg) if arg is not None else page.evaluate(js)
        if value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {what or js[:60]}")


def _click_point(page, point) -> None:
    """Hover first (plotly's WebGL traces pick the clicked point from the hover), then click."""
    page.mouse.move(point["x"] - 20, point["y"] - 20)
    page.mouse.move(point["x"], point["y"], steps=5)
    page.wait_for_timeout(400)
    page.mouse.click(point["x"], point["y"])


def _nav(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()


def _decisions(cache: Path) -> int:
    with sqlite3.connect(cache / "review.sqlite") as db:
        return db.execute("SELECT COUNT(*) FROM decisions WHERE undone = 0").fetchone()[0]


def test_demo_timeline_review_reel_and_a_90_minute_match(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1700})
        page.goto(server["base"], timeout=60_000)
        page.get_by_text("Demo match (synthetic)").first.wait_for(timeout=90_000)
        page.screenshot(path=str(ARTIFACTS / "match.png"), full_page=True)

        # Timeline: click the most confident event marker; the player jumps a few seconds before it
        _nav(page, "Timeline")
        _wait(page, _CHART_JS, what="the timeline chart")
        page.wait_for_timeout(500)
        point = _wait(page, _POINT_JS, "detected events", what="an event marker")
        assert page.evaluate("() => document.querySelector('video').currentTime") < 1.0
        _click_point(page, point)
        target = max(0.0, point["ms"] / 1000 - 3)
        moved = _wait(page, """(t) => { const v = document.querySelector('video');
                                  return v && v.currentTime >= t - 0.5 ? v.currentTime : null; }""",
                      target, timeout_s=30, what="the video to seek")
        assert target - 0.5 <= moved <= target + 15
        page.get_by_text("The frames the model weighted most").wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(ARTIFACTS / "timeline.png"), full_page=True)

        # Review: accept the current event
        _nav(page, "Review")
        accept = page.locator(".st-key-rv_accept button")
        accept.wait_for(timeout=30_000)
        before = _decisions(server["cache"])
        accept.click()
        _wait(page, "() => true", timeout_s=1)
        deadline = time.time() + 20
        while _decisions(server["cache"]) == before and time.time() < deadline:
            page.wait_for_timeout(200)
        assert _decisions(server["cache"]) == before + 1
        page.wait_for_timeout(1500)
        # K toggles play/pause of the page's video (keyboard-driven review, no server round trip)
        page.wait_for_selector("video", timeout=30_000)
        page.evaluate("() => document.querySelector('video').pause()")
        page.get_by_role("heading", name="Review").first.click()  # focus the page, not a widget
        page.keyboard.press("k")
        _wait(page, "() => !document.querySelector('video').paused", timeout_s=10, what="K to play")
        page.keyboard.press("k")
        _wait(page, "() => document.querySelector('video').paused", timeout_s=10, what="K to pause")
        page.screenshot(path=str(ARTIFACTS / "review.png"), full_page=True)

        # Highlights: every not-rejected event above the default confidence, fast cut, played over HTTP
        _nav(page, "Highlights")
        page.get_by_text("Not rejected, above a confidence").click()
        page.get_by_text("Snapped to").first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)                  # the rerun settled: one Cut button
        cut = page.locator(".st-key-hl_cut button").first
        cut.wait_for(timeout=30_000)
        cut.click()                                  # a reel job: the page shows the reel when it is done
        src = _wait(page, """() => { const v = [...document.querySelectorAll('video')]
                                  .find(v => (v.currentSrc || v.src || '').includes('/media-files/cache/reels/'));
                                  return v ? (v.currentSrc || v.src) : null; }""", timeout_s=90, what="the reel")
        req = urllib.request.Request(src, headers={"Range": "bytes=0-99"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 206 and len(r.read()) == 100
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "highlights.png"), full_page=True)

        _nav(page, "Models")
        page.get_by_text("This match against its labels").wait_for(timeout=60_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(ARTIFACTS / "models.png"), full_page=True)

        # A 90-minute match, 17 classes: time from opening the Timeline page to an interactive chart
        _nav(page, "Match")
        page.get_by_role("tab", name="Results folder").click()
        page.get_by_label("Results folder (under the media root)").fill("full_match")
        page.locator(".st-key-open_results button").click()
        page.get_by_text("Open: full_match").first.wait_for(timeout=60_000)
        t0 = time.perf_counter()
        _nav(page, "Timeline")
        _wait(page, _CHART_JS, what="the 90-minute chart")
        _wait(page, _POINT_JS, "detected events", what="90-minute event markers")
        t_default = time.perf_counter() - t0
        t1 = time.perf_counter()
        page.get_by_text("All 17").click()
        chart = _wait(page, """() => { const gd = document.querySelector('.js-plotly-plot');
                                return gd && gd._fullData && gd._fullData.length >= 20 && gd.querySelector('canvas')
                                       ? gd._fullData.map(t => t.name) : null; }""", what="17 class curves")
        point = _wait(page, _POINT_JS, "detected events", what="markers of 17 classes")
        t_all = time.perf_counter() - t1
        t2 = time.perf_counter()
        _click_point(page, point)
        t = int(point["ms"] // 1000)
        page.get_by_text(f"Moment: half 1, {t // 60:02d}:{t % 60:02d}").wait_for(timeout=30_000)
        t_click = time.perf_counter() - t2
        page.wait_for_timeout(800)
        page.screenshot(path=str(ARTIFACTS / "timeline_90min.png"), full_page=True)
        # a browser refresh: a new session reopens the same match from the URL, cold
        t3 = time.perf_counter()
        page.reload()
        _wait(page, _CHART_JS, what="the chart after a refresh")
        _wait(page, _POINT_JS, "detected events", what="markers after a refresh")
        t_reload = time.perf_counter() - t3
        assert page.get_by_text("full_match").count() >= 1
        browser.close()
    assert len([n for n in chart if n not in ("detected events", "ground truth", "frame saliency")]) == 17
    timing = {"page_to_interactive_chart_s": round(t_default, 2), "all_17_classes_redraw_s": round(t_all, 2),
              "click_to_seek_s": round(t_click, 2), "refresh_to_interactive_chart_s": round(t_reload, 2),
              "frames_per_half": 5400 * 2, "classes": 17}
    (ARTIFACTS / "timeline_timing.json").write_text(json.dumps(timing, indent=2))
    print("90-minute timeline:", timing)
    assert t_default < 30 and t_all < 30


def test_three_tabs_on_a_fresh_cache_and_a_spotting_job_through_a_refresh(tmp_path):
    """A new user's first start: three tabs at once while the demo builds (one build, behind a lock),
    then the default review list, and a spotting job that goes on through page changes and a refresh.
    The server log must hold no traceback."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    cache, media = tmp_path / "fresh-cache", tmp_path / "media"
    game = media / "long_game"
    game.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for half in (1, 2):   # 45 minutes a half: a job that runs long enough to be seen running
        np.save(game / f"{half}_synth512.npy", rng.standard_normal((5400, 512)).astype(np.float32))
    env = dict(os.environ, SPOTTING_CACHE=str(cache), SPOTTING_MEDIA_ROOT=str(media), SPOTTING_AUTOLOAD_DEMO="1")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_app(env) as app, sync_playwright() as p:
        base = app.base
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        tabs = [browser.new_page(viewport={"width": 1440, "height": 1400}) for _ in range(3)]
        for tab in tabs:                         # all three within a second, nothing built yet
            tab.goto(base, wait_until="commit", timeout=60_000)
        for tab in tabs:
            tab.get_by_text("Demo match (synthetic)").first.wait_for(timeout=300_000)
        assert (cache / "demo" / "demo.json").is_file() and not [d for d in cache.glob(".demo-build*") if d.is_dir()]
        page = tabs[0]
        for tab in tabs[1:]:
            tab.close()

        _nav(page, "Review")
        page.locator(".st-key-rv_every").wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "review_default_list.png"), full_page=True)

        _nav(page, "Match")
        page.get_by_role("tab", name="SoccerNet game folder").click()
        page.get_by_label("Game folder (under the media root)").fill("long_game")
        page.locator(".st-key-open_game button").click()
        page.get_by_text("running", exact=False).first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "match_running_job.png"), full_page=True)
        _nav(page, "Timeline")                   # away, then a browser refresh
        page.wait_for_timeout(1000)
        page.reload()
        assert "job=" in page.url, page.url      # the job rides in the URL, also after a page change
        page.locator('[data-testid="stSidebar"]').get_by_text("long_game").first.wait_for(timeout=300_000)
        _nav(page, "Match")
        page.get_by_text("Open: long_game").first.wait_for(timeout=60_000)
        browser.close()
        text = app.log()
    assert "Traceback" not in text, text[-3000:]
