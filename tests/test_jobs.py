"""Jobs: the SQLite queue, the worker process, cancel, a killed worker marked interrupted and resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spotting_core.engine.spot import spot_path
from spotting_core.errors import SpottingError
from spotting_core.models import build_model, save_checkpoint
from spotting_core.review.jobs import JobQueue
from spotting_core.review.worker import run_job, serve
from spotting_core.synth.benchmark import generate
from spotting_core.synth.toys import write_toy_video

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def queue(tmp_path, monkeypatch):
    monkeypatch.setenv("SPOTTING_CACHE", str(tmp_path / "cache"))
    return JobQueue(tmp_path / "jobs.sqlite")


@pytest.fixture(scope="module")
def game(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("jobs") / "data", games=3, seed=0, half_minutes=2.0, dim=32)
    game_dir = next(root.rglob("Labels-v2.json")).parent
    ckpt = save_checkpoint(root / "m.pt", build_model("avgpool++", input_dim=32, window_s=4.0),
                           classes=[f"c{i}" for i in range(17)], feature_name="synth32")
    return game_dir, ckpt


def test_queue_states_dedup_and_cancel(queue, game):
    game_dir, ckpt = game
    a = queue.submit("spot_game", {"game_dir": str(game_dir), "checkpoint": str(ckpt)})
    assert queue.submit("spot_game", {"game_dir": str(game_dir), "checkpoint": str(ckpt)}) == a  # joins it
    b = queue.submit("spot_game", {"game_dir": str(game_dir), "checkpoint": str(ckpt), "rebuild": True})
    assert b != a and [j["state"] for j in queue.jobs()] == ["queued", "queued"]
    queue.cancel(b)
    assert queue.get(b)["state"] == "cancelled"
    job = queue.claim(os.getpid())
    assert job["id"] == a and job["state"] == "running" and queue.claim(os.getpid()) is None
    assert queue.report(a, 0.5, "half way") is False
    queue.cancel(a)                                    # running: asked, stopped at its next report
    assert queue.get(a)["state"] == "running" and queue.report(a, 0.6) is True
    with pytest.raises(SpottingError, match="unknown job kind"):
        queue.submit("mine-bitcoin", {})
    with pytest.raises(SpottingError, match="nothing to resume"):
        queue.resume(a)


def test_worker_runs_a_spotting_job_and_reports_failures(queue, game, tmp_path):
    game_dir, ckpt = game
    ok = queue.submit("spot_game", {"game_dir": str(game_dir), "checkpoint": str(ckpt)})
    bad = queue.submit("spot_game", {"game_dir": str(tmp_path / "nowhere"), "checkpoint": str(ckpt)})
    serve(queue, once=True)
    done, failed = queue.get(ok), queue.get(bad)
    assert done["state"] == "done" and done["progress"] == 1.0
    assert (Path(done["result"]["folder"]) / "results_spotting.json").is_file()
    assert failed["state"] == "failed" and failed["message"].endswith("not a folder") and "\n" not in failed["message"]


def test_cancel_stops_a_running_job_at_its_next_report(queue, game):
    game_dir, ckpt = game
    job_id = queue.submit("spot_game", {"game_dir": str(game_dir), "checkpoint": str(ckpt), "rebuild": True})
    job = queue.claim(os.getpid())
    queue.cancel(job_id)
    assert run_job(queue, job) == "cancelled" and queue.get(job_id)["state"] == "cancelled"
    assert queue.resume(job_id) == job_id and queue.get(job_id)["state"] == "queued"


def test_killed_worker_is_interrupted_and_resumes_to_the_same_results(queue, tmp_path):
    videos = []
    for name in ("match.mp4", "reference.mp4"):   # same content, two files: two independent caches
        videos.append(write_toy_video(tmp_path / name, [(5.0, 0), (20.0, 1)], duration_s=40.0, size=(64, 64), seed=3))
    ckpt = save_checkpoint(tmp_path / "mb.pt", build_model("avgpool++", input_dim=1280, window_s=4.0),
                           classes=[f"c{i}" for i in range(17)], feature_name="mobilenetv2-offline")
    job_id = queue.submit("spot_video", {"video": str(videos[0]), "checkpoint": str(ckpt)})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "spotting_core.review.worker", "--queue", str(queue.path)]
    worker = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and (queue.get(job_id)["state"] != "running" or queue.get(job_id)["progress"] < 0.2):
        time.sleep(0.2)
    assert queue.get(job_id)["state"] == "running", queue.get(job_id)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert queue.recover() == [job_id]
    interrupted = queue.get(job_id)
    assert interrupted["state"] == "interrupted" and "resume" in interrupted["message"]

    queue.resume(job_id)
    subprocess.run([*cmd, "--once"], env=env, check=True, timeout=300)
    done = queue.get(job_id)
    assert done["state"] == "done" and done["attempts"] == 2
    ref = spot_path(videos[1], checkpoint=ckpt, out_dir=tmp_path / "ref")
    np.testing.assert_allclose(np.load(Path(done["result"]["folder"]) / "1_scores.npy"), np.load(ref / "1_scores.npy"),
                               atol=1e-5)
