"""The jobs panel: long work (spotting a video or a game, cutting a reel) runs as a job in the worker
process (spotting_core/review/worker.py), so it survives page changes, refreshes and closed tabs.

    submit("spot_video", {...})    queue it (an identical running request is joined), remember it here
    jobs_panel()                   live progress, cancel, resume; a finished spotting job opens its match

Not a page (app.py registers the pages); widgets only.
"""

from __future__ import annotations

import os

import streamlit as st

from spotting_core.review.jobs import JobQueue
from spotting_core.review.worker import start_workers

LABELS = {"spot_video": "Spot video", "spot_game": "Spot game folder", "reel": "Cut reel",
          "pretrained": "Fetch pretrained"}
ICONS = {"queued": ":material/schedule:", "running": ":material/autorenew:", "done": ":material/check_circle:",
         "failed": ":material/error:", "cancelled": ":material/cancel:", "interrupted": ":material/pause_circle:"}


@st.cache_resource
def _queue_for(path: str) -> JobQueue:
    """Once per server process and queue: mark the jobs of a dead worker interrupted."""
    queue = JobQueue(path)
    queue.recover()
    return queue


def queue() -> JobQueue:
    q = _queue_for(str(JobQueue().path))
    start_workers(q, parent=os.getpid())  # a free slot gets its worker (cheap when they all run)
    return q


def submit(kind: str, inputs: dict, *, opens_match: bool = False) -> int:
    """Queue a job for this session; with `opens_match`, its match opens here when it is done (also
    after a browser refresh: the job id rides in the URL)."""
    job_id = queue().submit(kind, inputs)
    mine = st.session_state.setdefault("my_jobs", {})
    mine[str(job_id)] = {"opens_match": opens_match, "seen_done": False}
    if opens_match:
        st.query_params["job"] = str(job_id)
    return job_id


def follow_jobs() -> None:
    """On every page: adopt the job named in the URL (a refreshed tab), open a finished one's match."""
    mine = st.session_state.setdefault("my_jobs", {})
    from_url = st.query_params.get("job")
    if from_url and from_url not in mine:
        mine[from_url] = {"opens_match": True, "seen_done": False}
    waiting = [int(i) for i, m in mine.items() if m["opens_match"] and not m["seen_done"]]
    if not waiting:
        return
    if not from_url:          # a page change drops the URL's query: put the job back, for a refresh
        st.query_params["job"] = str(waiting[-1])
    q = queue()
    live = []
    for job_id in waiting:
        job = q.get(job_id)
        if job is None or job["state"] in ("failed", "cancelled", "interrupted"):
            mine[str(job_id)]["seen_done"] = True   # shown on the Match page with its reason
        elif job["state"] == "done":
            _open_finished(job)
        else:
            live.append(job_id)
    if st.query_params.get("job") and all(m["seen_done"] for m in mine.values()):
        del st.query_params["job"]
    if live:
        _watch(tuple(live))


@st.fragment(run_every=1.0)
def _watch(job_ids: tuple[int, ...]) -> None:
    """In the sidebar of every page while this session's spotting jobs run: their progress, and the
    whole page reruns (the match opens) as soon as one is done."""
    q = queue()
    for job_id in job_ids:
        job = q.get(job_id)
        if job is None or job["state"] not in ("queued", "running"):
            st.rerun(scope="app")
        st.progress(float(job["progress"]), text=f"{_describe(job)}: {job['message'] or job['state']}")


def _describe(job: dict) -> str:
    inputs = job["inputs"]
    what = inputs.get("video") or inputs.get("game_dir") or inputs.get("out") or inputs.get("name") or ""
    return f"{LABELS.get(job['kind'], job['kind'])} · {os.path.basename(str(what))}"


def _open_finished(job: dict) -> None:
    """A spotting job this session asked for, just finished: open its match."""
    from pages.common import set_match
    from spotting_core.review.matches import open_results_folder

    mine = st.session_state.get("my_jobs", {}).get(str(job["id"]))
    if not mine or mine["seen_done"] or not mine["opens_match"] or not job["result"]:
        return
    mine["seen_done"] = True
    set_match(open_results_folder(job["result"]["folder"]))
    st.session_state["opened_from_job"] = job["id"]
    if "job" in st.query_params:
        del st.query_params["job"]
    st.rerun(scope="app")


@st.fragment(run_every=1.0)
def jobs_panel(limit: int = 8) -> None:
    """The latest jobs, refreshed every second while any of them is live."""
    q = queue()
    jobs = q.jobs(limit=limit)
    if not jobs:
        st.caption("No jobs yet: spotting a video or a game folder runs here, in the background.")
        return
    for job in jobs:
        state = job["state"]
        row = st.container(border=True, key=f"job_{job['id']}")
        head, action = row.columns([5, 1])
        head.markdown(f"{_describe(job)} · **{state}**", help=f"job {job['id']}")
        if state in ("queued", "running"):
            row.progress(float(job["progress"]), text=job["message"] or state)
            if action.button("Cancel", key=f"cancel_{job['id']}", icon=":material/cancel:"):
                q.cancel(job["id"])
        elif state == "done":
            took = (job["finished"] or 0) - (job["started"] or job["created"])
            row.caption(f"done in {took:.0f} s" + (f" · {job['result'].get('name', '')}" if job["result"] else ""))
            _open_finished(job)
        elif state in ("failed", "interrupted", "cancelled"):
            (row.error if state == "failed" else row.warning)(job["message"] or state, icon=ICONS[state])
            if action.button("Resume", key=f"resume_{job['id']}", icon=":material/play_arrow:"):
                q.resume(job["id"])
                mine = st.session_state.setdefault("my_jobs", {})
                mine.setdefault(str(job["id"]), {"opens_match": job["kind"] in ("spot_video", "spot_game"),
                                                  "seen_done": False})
