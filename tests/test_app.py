"""The review app through streamlit's AppTest: every page, the main flows and the error paths.

The demo match is built once into .cache/test-app (gitignored) and reused by later runs; the review
store, results and reels there are wiped at the start of each session.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from pages.support.charts import downsample_max, event_at, salient_frames, timeline_figure
from pages.support.server import confine, media_url
from spotting_core.errors import SpottingError
from spotting_core.review.matches import Match
from spotting_core.review.store import ReviewStore

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120  # the first run imports torch and plotly


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """SPOTTING_CACHE with the demo built once; a fresh media root with a few user files."""
    from spotting_core.synth.demo import ensure_demo

    cache = ROOT / ".cache" / "test-app"
    for stale in ("results", "reels", "uploads"):
        shutil.rmtree(cache / stale, ignore_errors=True)
    for f in cache.glob("review.sqlite*"):
        f.unlink()
    media = tmp_path_factory.mktemp("media")
    saved = {k: os.environ.get(k) for k in ("SPOTTING_CACHE", "SPOTTING_MEDIA_ROOT", "SPOTTING_AUTOLOAD_DEMO")}
    os.environ.update({"SPOTTING_CACHE": str(cache), "SPOTTING_MEDIA_ROOT": str(media), "SPOTTING_AUTOLOAD_DEMO": "1"})
    demo = ensure_demo()
    from spotting_core.media.shots import detect_shots

    # once per demo (cached beside it): what Highlights snaps to; content: seconds, where TransNetV2 on a
    # loaded 2-core CPU takes minutes (test_shots.py covers TransNetV2)
    detect_shots(demo / "1_demo.mp4", detector="content")
    yield {"cache": cache, "media": media, "demo": demo}
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def _store(env) -> ReviewStore:
    return ReviewStore(env["cache"] / "review.sqlite")


def _texts(at, kind: str) -> str:
    return " | ".join(str(e.value) for e in getattr(at, kind))


# ---------------------------------------------------------------------------------------------
# Helpers without widgets
# ---------------------------------------------------------------------------------------------
def test_confine_refuses_paths_outside_the_media_root(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "v.mp4").write_bytes(b"x")
    assert confine("a/v.mp4", root=tmp_path, kind="file") == (tmp_path / "a" / "v.mp4").resolve()
    for bad in ("../etc/passwd", "/etc/passwd", "a/../../x"):
        with pytest.raises(SpottingError, match="outside the media root"):
            confine(bad, root=tmp_path)
    os.symlink("/etc", tmp_path / "escape")
    with pytest.raises(SpottingError, match="outside the media root"):
        confine("escape/passwd", root=tmp_path)
    with pytest.raises(SpottingError, match="no such folder"):
        confine("missing", root=tmp_path, kind="dir")
    with pytest.raises(SpottingError, match="is a folder"):
        confine("a", root=tmp_path, kind="file")


def test_downsample_keeps_every_peak_at_its_frame():
    rng = np.random.default_rng(0)
    y = rng.random(10_800).astype(np.float32) * 0.5
    y[[17, 5000, 10_799]] = [0.9, 0.95, 0.99]
    frames, values = downsample_max(y, 1500)
    assert len(frames) <= 1500
    for f in (17, 5000, 10_799):
        assert f in set(frames.tolist())
    assert np.allclose(values, y[frames])


def test_timeline_figure_is_webgl_and_bounded_for_a_90_minute_half():
    T, C = 10_800, 17
    rng = np.random.default_rng(1)
    arrays = {"scores": rng.random((T, C)).astype(np.float32), "saliency": rng.random(T).astype(np.float32)}
    events = pd.DataFrame({"event_id": [0, 1], "half": [1, 1], "position_ms": [60_000, 2_700_000],
                           "label": ["Goal", "Corner"], "class_id": [2, 13], "confidence": [0.9, 0.6],
                           "status": ["accepted", "pending"]})
    fig = timeline_figure(arrays=arrays, events=events, labels=None, half=1,
                          classes=["Goal", "Corner", "Penalty", "Kick-off", "Substitution", "Offside", "Foul",
                                   "Clearance", "Throw-in", "Ball out of play", "Shots on target",
                                   "Shots off target", "Indirect free-kick", "Direct free-kick", "Yellow card",
                                   "Red card", "Yellow->red card"])
    assert {t.type for t in fig.data} == {"scattergl"}
    assert sum(len(t.x) for t in fig.data) <= 18 * 1200 + 2
    marker = next(t for t in fig.data if t.name == "detected events")
    assert [list(c) for c in marker.customdata] == [[0, 60_000], [1, 2_700_000]]


def test_a_click_on_a_curve_peak_selects_the_event_drawn_there():
    events = pd.DataFrame({"event_id": [7, 8, 9], "label": ["Foul", "Goal", "Foul"],
                           "position_ms": [215_000, 215_400, 240_000]})
    assert event_at(events, 214.5, label="Foul") == 7              # the peak's point, half a second off
    assert event_at(events, 215.3) == 8                            # any class: the nearest
    assert event_at(events, 230.0, label="Foul") is None           # between peaks: only a seek
    assert event_at(events, 215.0, label="Corner") is None and event_at(events.iloc[0:0], 1.0) is None


def test_salient_frames_from_window_weights():
    windows = np.zeros((100, 30), np.float32)
    windows[50, [3, 20, 29]] = [0.9, 0.8, 0.7]
    top = salient_frames({"saliency_windows": windows}, 50, k=3)
    assert top == [(38, pytest.approx(0.9)), (55, pytest.approx(0.8)), (64, pytest.approx(0.7))]


def test_segment_thumbnails_are_the_exact_first_and_last_frames(tmp_path):
    from pages.support.charts import frames_at
    from spotting_core.synth.shots import read_frame_index, render_shot_video, shot_script

    video = render_shot_video(tmp_path / "v.mp4", shot_script(seconds=3, dissolves=0, seed=1))
    firsts = frames_at(video, [k / 25 + 0.01 for k in (0, 44, 45, 74)], width=320)
    lasts = frames_at(video, [(k + 1) / 25 - 0.03 for k in (0, 44, 45, 74)], width=320)
    assert [read_frame_index(f) for f in firsts] == [read_frame_index(f) for f in lasts] == [0, 44, 45, 74]


def test_media_urls_only_for_served_folders(env):
    assert media_url(env["demo"] / "1_demo.mp4") == "/media-files/cache/demo/1_demo.mp4"
    assert media_url(Path("/etc/passwd")) is None


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------
def test_first_start_opens_the_synthetic_demo(env):
    at = _app()
    match = at.session_state["match"]
    assert match["kind"] == "demo" and match["synthetic"]
    assert "Synthetic demo" in _texts(at.sidebar, "warning")
    assert at.query_params["match"] == Match(**match).match_id
    assert "synthetic demo" in _texts(at, "caption").lower()


def test_timeline_click_moves_the_video_and_shows_salient_frames(env):
    at = _app("pages/timeline.py")
    assert at.get("plotly_chart"), "no timeline chart"
    events = _store(env).events(at.session_state["match"] and Match(**at.session_state["match"]).match_id)
    ev = events[events["half"] == 1].sort_values("confidence").iloc[-1]
    # a click on an event marker, as the browser reports it
    at.session_state["timeline"] = {"selection": {"points": [
        {"x": ev["position_ms"] / 60000, "y": ev["confidence"], "curve_number": 9, "point_number": 0,
         "customdata": [int(ev["event_id"]), int(ev["position_ms"])]}], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert at.session_state["event_id"] == int(ev["event_id"])
    video = at.get("video")[0]
    assert video.proto.start_time == max(0, int(ev["position_ms"] / 1000 - 3))
    assert len(at.image) >= 1, "no salient-frame thumbnails"
    # a click on a curve point (no customdata): seek to its x
    at.session_state["timeline"] = {"selection": {"points": [{"x": 2.0, "y": 0.5, "curve_number": 0}],
                                                  "box": [], "lasso": []}}
    at.run()
    assert at.session_state["seek"]["t"] == 120.0, (at.session_state["timeline"], at.session_state["seek"])
    assert at.get("video")[0].proto.start_time == 117
    # next / previous event buttons
    at.button(key="tl_next").click().run()
    assert at.get("video")[0].proto.start_time >= 117


def test_review_accept_reject_nudge_relabel_undo_and_exports(env):
    at = _app("pages/review.py")
    mid = Match(**at.session_state["match"]).match_id
    first = at.session_state["event_id"]
    at.button(key="rv_accept").click().run()
    assert not at.exception
    store = _store(env)
    assert store.event(mid, first)["status"] == "accepted"
    second = at.session_state["event_id"]
    assert second != first  # auto-advance
    at.button(key="rv_plus").click().run()
    assert store.event(mid, second)["position_ms"] == store.event(mid, second)["original_position_ms"] + 1000
    at.selectbox(key="rv_new_label").select("Penalty")
    at.button(key="rv_relabel").click().run()
    assert store.event(mid, second)["label"] == "Penalty"
    at.button(key="rv_undo").click().run()
    assert store.event(mid, second)["label"] == store.event(mid, second)["original_label"]
    at.button(key="rv_reject").click().run()
    assert store.event(mid, second)["status"] == "rejected"
    assert len(store.labels_dict(mid)["annotations"]) == 1  # the accepted event only
    assert [b.proto.label for b in at.get("download_button")][:3] == [
        "Labels-v2.json (accepted)", "results_spotting.json (not rejected)", "CSV (all, with status)"]


def test_review_and_highlights_open_on_the_likely_events_and_the_timeline_draws_operating_points(env):
    from spotting_core.review.matches import likely_events, match_thresholds, review_thresholds

    match = Match(**_app().session_state["match"])
    thresholds = match_thresholds(match)
    assert thresholds is not None, "the demo checkpoint carries no operating points"
    events = _store(env).events(match.match_id)                         # with the decisions of other tests
    likely = int(likely_events(events, thresholds).sum())
    assert 0 < likely < len(events)

    at = _app("pages/review.py")
    assert at.toggle(key="rv_every").value is False
    assert len(at.dataframe[0].value) == likely                         # the default list: likely events only
    at.toggle(key="rv_every").set_value(True).run()
    at.slider(key="rv_min_conf").set_value(0.0).run()
    assert len(at.dataframe[0].value) == len(events)                    # one switch: every candidate

    hl = _app("pages/highlights.py")
    assert hl.radio(key="hl_which").value == "Likely events"

    tl = _app("pages/timeline.py")
    spec = json.loads(tl.get("plotly_chart")[0].proto.spec)
    lines = {t["name"]: t["y"][0] for t in spec["data"] if t.get("name", "").endswith(" operating point")}
    shown = tl.multiselect(key="tl_classes").value
    assert set(lines) == {f"{c} operating point" for c in shown}
    assert all(lines[f"{c} operating point"] == pytest.approx(review_thresholds(thresholds)[c]) for c in shown)


def test_two_tabs_see_each_others_decisions(env):
    a = _app("pages/review.py")
    b = _app("pages/review.py")
    mid = Match(**a.session_state["match"]).match_id
    target = a.session_state["event_id"]
    before = int((b.dataframe[0].value["status"] == "rejected").sum())
    a.button(key="rv_reject").click().run()
    b.run()  # the other tab's next rerun reads the store
    assert _store(env).event(mid, target)["status"] == "rejected"
    assert int((b.dataframe[0].value["status"] == "rejected").sum()) == before + 1
    b.button(key="rv_undo").click().run()  # undo from the other tab undoes the latest decision
    assert _store(env).event(mid, target)["status"] != "rejected"


def test_highlights_cut_a_fast_reel(env):
    at = _app("pages/highlights.py")
    at.radio(key="hl_which").set_value("Not rejected, above a confidence").run()
    at.slider(key="hl_min_conf").set_value(0.0).run()
    at.multiselect(key="hl_classes").set_value(["Goal", "Corner", "Foul", "Throw-in", "Ball out of play"]).run()
    assert not at.exception
    assert at.dataframe, _texts(at, "warning")
    at.button(key="hl_cut").click().run()                       # a reel job, in the worker
    assert not at.exception and not at.error, _texts(at, "error")
    assert at.session_state["hl_job"] is not None and "hl_reel" not in at.session_state
    at.switch_page("pages/review.py").run()                     # away and back: the job goes on
    _wait_for_jobs(at)
    at.switch_page("pages/highlights.py").run()
    assert not at.exception and not at.error, _texts(at, "error")
    reel = Path(at.session_state["hl_reel"])
    assert reel.is_file() and reel.stat().st_size > 1000
    assert reel.with_suffix(".vtt").is_file() and reel.with_name(reel.stem + ".edl").is_file()
    assert at.get("video"), "the reel is not shown"


def test_highlights_snaps_to_shots_and_previews_each_segment(env):
    at = _app("pages/highlights.py")
    at.radio(key="hl_which").set_value("Likely events").run()
    # the demo's half 1: a Ball out of play ends mid-shot 1.6 s before a cut, a Foul 2.5 s before one (README)
    at.multiselect(key="hl_classes").set_value(["Ball out of play", "Foul"]).run()
    assert not at.exception and at.toggle(key="hl_snap").value is True      # snapping is on by default
    assert "Snapped to" in _texts(at, "caption")
    rows = at.dataframe[0].value
    assert len(at.image) >= 2 * min(len(rows), 12)                          # first and last frame of each
    assert (rows["source_start"] != rows["requested_start"]).any() or (rows["source_end"] != rows["requested_end"]).any()
    at.toggle(key="hl_snap").set_value(False).run()
    rows = at.dataframe[0].value
    assert (rows["source_start"] == rows["requested_start"]).all() and "Snapped to" not in _texts(at, "caption")


def test_timeline_shows_shot_boundaries_as_ticks(env):
    at = _app("pages/timeline.py")
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    ticks = [t for t in spec["data"] if t.get("name") == "shot boundaries"]
    assert ticks and len(ticks[0]["x"]) >= 2, [t.get("name") for t in spec["data"]]
    assert "shot boundaries of the video" in _texts(at, "caption")


def test_models_page_lists_models_checkpoints_and_evaluates(env):
    from spotting_core.models import MODELS

    at = _app("pages/models.py")
    assert not at.error, _texts(at, "error")
    assert set(at.dataframe[0].value["model"]) == set(MODELS)
    assert any("demo_saliency" in p for p in at.dataframe[1].value["checkpoint"])
    per_class = at.dataframe[-1].value
    assert len(per_class) == 17 and per_class["AP (model)"].between(0, 1).all()
    assert at.metric[0].label == "Average-mAP (model)"


def test_match_page_error_paths(env, tmp_path):
    media = env["media"]
    at = _app("pages/match.py")
    at.text_input(key="results_dir").set_value("../../etc").run()
    at.button(key="open_results").click().run()
    assert "outside the media root" in _texts(at, "error")

    (media / "empty").mkdir(exist_ok=True)
    at.text_input(key="results_dir").set_value("empty").run()
    at.button(key="open_results").click().run()
    assert "no results_spotting.json" in _texts(at, "error")

    bad = media / "bad_results"
    bad.mkdir(exist_ok=True)
    (bad / "results_spotting.json").write_text("{not json")
    at.text_input(key="results_dir").set_value("bad_results").run()
    at.button(key="open_results").click().run()
    assert "malformed JSON" in _texts(at, "error")

    corrupt = media / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    at.text_input(key="video_path").set_value("corrupt.mp4").run()
    at.button(key="open_video").click().run()
    assert "corrupt.mp4" in _texts(at, "error")

    # a game folder whose features do not fit the checkpoint
    game = media / "game"
    game.mkdir(exist_ok=True)
    for h in (1, 2):
        np.save(game / f"{h}_synth512.npy", np.zeros((100, 64), np.float32))
    at.text_input(key="game_dir").set_value("game").run()
    at.button(key="open_game").click().run()
    assert "64" in _texts(at, "error") and "512" in _texts(at, "error")

    # a malformed labels file next to good features
    for h in (1, 2):
        np.save(game / f"{h}_synth512.npy", np.zeros((100, 512), np.float32))
    (game / "Labels-v2.json").write_text(json.dumps({"annotations": [{"gameTime": "3 - 99:00", "label": "Goal"}]}))
    at.button(key="open_game").click().run()
    assert "gameTime" in _texts(at, "error")
    assert not at.exception
    assert at.session_state["match"]["kind"] == "demo"  # nothing replaced the open match


def _wait_for_jobs(at: AppTest, timeout: float = 120.0) -> None:
    """Wait until this session's jobs are finished, then rerun the page (a done job opens its match)."""
    import time

    from spotting_core.review.jobs import JobQueue

    queue, ids = JobQueue(), [int(i) for i in at.session_state["my_jobs"]]
    deadline = time.time() + timeout
    while time.time() < deadline and any(queue.get(i)["state"] in ("queued", "running") for i in ids):
        time.sleep(0.2)
    assert all(queue.get(i)["state"] == "done" for i in ids), [queue.get(i) for i in ids]
    at.run()
    assert not at.exception, at.exception


def test_game_folder_spots_once_then_reopens_from_cache(env):
    game = env["media"] / "good_game"
    game.mkdir(exist_ok=True)
    for h in (1, 2):
        shutil.copy2(env["demo"] / f"{h}_synth512.npy", game / f"{h}_synth512.npy")
    shutil.copy2(env["demo"] / "Labels-v2.json", game / "Labels-v2.json")
    at = _app("pages/match.py")
    at.text_input(key="game_dir").set_value("good_game").run()
    at.button(key="open_game").click().run()
    assert not at.exception and not at.error, _texts(at, "error")
    _wait_for_jobs(at)                               # spotted in the worker process, then opened here
    match = Match(**at.session_state["match"])
    assert match.kind == "game" and match.labels
    results = Path(match.folder) / "results_spotting.json"
    stamp = results.stat().st_mtime_ns
    at.button(key="open_game").click().run()
    assert results.stat().st_mtime_ns == stamp  # cached: not spotted again
    at.switch_page("pages/timeline.py").run()
    assert not at.exception
    assert "No video for half 1" in _texts(at, "info")


def test_pages_without_a_match_say_so(env, monkeypatch):
    monkeypatch.setenv("SPOTTING_AUTOLOAD_DEMO", "0")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert "match" not in at.session_state
    for page in ("pages/timeline.py", "pages/review.py", "pages/highlights.py"):
        at.switch_page(page).run()
        assert not at.exception
        assert "No match is open" in _texts(at, "info")
    at.switch_page("pages/models.py").run()
    assert "Open a match" in _texts(at, "info")


def test_refresh_reopens_the_match_from_the_url(env):
    at = _app()
    mid = at.query_params["match"]
    again = AppTest.from_file(APP, default_timeout=TIMEOUT)
    again.query_params["match"] = mid
    again.run()
    assert Match(**again.session_state["match"]).match_id == mid


def test_demo_video_features_and_labels_are_aligned(env):
    from spotting_core.io.tables import read_labels
    from spotting_core.io.video import probe
    from spotting_core.synth.broadcast import VIDEO_FPS
    from spotting_core.synth.demo_model import DEMO_BENCHMARK

    demo = env["demo"]
    seconds = DEMO_BENCHMARK["half_minutes"] * 60
    for half in (1, 2):
        info = probe(demo / f"{half}_demo.mp4")
        assert info.video_codec == "h264" and info.fps == VIDEO_FPS
        assert abs(info.duration - seconds) < 1.0
        assert np.load(demo / f"{half}_synth512.npy", mmap_mode="r").shape == (int(seconds * 2), 512)
        assert np.load(demo / f"{half}_scores.npy").shape == (int(seconds * 2), 17)
        assert np.load(demo / f"{half}_saliency_windows.npy").shape[0] == int(seconds * 2)
    labels = read_labels(demo / "Labels-v2.json")
    assert len(labels) > 10 and labels["position_ms"].max() < seconds * 1000
    meta = json.loads((demo / "match.json").read_text())
    assert meta["synthetic"] is True and meta["kind"] == "demo"


def test_upload_is_stored_in_the_cache_and_a_bad_one_is_reported(env):
    import re

    uploads = env["cache"] / "uploads"
    at = _app("pages/match.py")
    at.radio(key="video_source").set_value("Upload").run()
    video = (env["demo"] / "1_demo.mp4").read_bytes()
    at.file_uploader(key="video_upload").upload("My match (final).mp4", video, "video/mp4").run()
    assert not at.exception and not at.error, _texts(at, "error")
    stored = list(uploads.iterdir())  # a random name: only the sanitised suffix of the user's name is kept
    assert len(stored) == 1 and re.fullmatch(r"[0-9a-f]{32}\.mp4", stored[0].name), stored
    assert stored[0].read_bytes() == video
    at.run()
    assert list(uploads.iterdir()) == stored  # written once, not on every rerun
    at.file_uploader(key="video_upload").upload("broken.mp4", b"not a video at all" * 100, "video/mp4").run()
    assert not at.exception
    assert "broken.mp4" in _texts(at, "error")  # reported under the user's name, right away
    assert list(uploads.iterdir()) == stored  # and not kept
    assert at.button(key="open_video").proto.disabled  # nothing to spot
    at.run()
    assert "broken.mp4" in _texts(at, "error")
    assert not at.exception


def test_a_spotting_job_outlives_page_changes_and_a_refresh(env):
    """Spotting runs in the worker: the session moves to another page, the job ends, the match opens;
    a refreshed tab (a new session with the job in its URL) opens it too."""
    from spotting_core.review.jobs import JobQueue

    game = env["media"] / "job_game"
    game.mkdir(exist_ok=True)
    for h in (1, 2):
        x = np.load(env["demo"] / f"{h}_synth512.npy")
        np.save(game / f"{h}_synth512.npy", x[::-1].copy())     # new content: not in the results cache
    at = _app("pages/match.py")
    at.text_input(key="game_dir").set_value("job_game").run()
    at.button(key="open_game").click().run()
    assert not at.exception and not at.error, _texts(at, "error")
    (job_id,) = [int(i) for i in at.session_state["my_jobs"]]
    assert at.query_params["job"] == [str(job_id)] or at.query_params["job"] == str(job_id)
    at.switch_page("pages/review.py").run()                       # away from the Match page
    assert not at.exception
    refreshed = AppTest.from_file(APP, default_timeout=TIMEOUT)
    refreshed.query_params["job"] = str(job_id)
    _wait_for_jobs(at)
    at.switch_page("pages/match.py").run()                        # back: the finished job opens its match
    assert not at.exception
    assert Match(**at.session_state["match"]).kind == "game"
    refreshed.run()
    assert not refreshed.exception
    assert Match(**refreshed.session_state["match"]).source == str(game)
    assert JobQueue().get(job_id)["state"] == "done"
