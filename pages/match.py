"""Match: open a match (demo, video, SoccerNet game folder, results folder) and spot it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages.common import current_match, open_demo, reviewed_events, set_match
from pages.jobs_panel import jobs_panel, submit
from pages.support.catalog import list_checkpoints, pretrained_choices
from pages.support.server import CHECKPOINT_SUFFIXES, confine, max_upload_mb, media_root, store_upload
from spotting_core.errors import SpottingError
from spotting_core.io.video import VIDEO_SUFFIXES, probe
from spotting_core.review.matches import game_folder_match, open_results_folder, video_match
from spotting_core.runtime import cache_root

st.header("Match")
match = current_match()
if match is not None:
    events = reviewed_events(match)
    st.success(f"Open: **{match.name}** ({match.kind}) · {len(events)} events · "
               f"{'labels' if match.labels else 'no labels'} · "
               f"{'video' if match.videos else 'no video'}", icon=":material/check_circle:")
    if match.synthetic:
        st.caption("This is the synthetic demo: a generated video with a clock and the events written on screen, "
                   "synthetic features and labels, and a small model trained on the synthetic benchmark. "
                   "A real match opens through the same pages.")


def _fetch_button(name: str, missing: list[str], key: str) -> None:
    """Fetch `name` and the entries it requires as a job (it goes on through page changes and refreshes)."""
    if st.button(f"Fetch {' + '.join(missing)}", key=f"{key}_fetch", icon=":material/download:",
                 help="Runs as a job, listed under Jobs below; the checkpoint is ready once it is done."):
        submit("pretrained", {"name": name})
        st.toast(f"Fetching {name}: see Jobs below", icon=":material/download:")


def _checkpoint_picker(key: str) -> Path | None:
    pretrained = {f"pretrained:{p['name']}": p for p in pretrained_choices()}
    installed = {str(Path(p["path"]).resolve()) for p in pretrained.values() if p["path"]}
    found = {str(p): p for p in list_checkpoints() if str(p.resolve()) not in installed}
    choice = st.selectbox("Checkpoint", [*found, *pretrained, "(type a path)"], key=f"{key}_ckpt",
                          format_func=lambda v: pretrained[v]["label"] if v in pretrained else v,
                          help=f"Checkpoints found in assets/, {cache_root() / 'checkpoints'} and the media root, "
                               "then the official SoccerNet-trained models (`spotting pretrained list`).")
    if choice in pretrained:
        entry = pretrained[choice]
        if not entry["installed"]:
            st.info(f"Not installed. Fetching downloads {' + '.join(entry['to_fetch'])}, checks every file against "
                    f"its published hash and converts it (the same as `spotting pretrained fetch {entry['name']}`).",
                    icon=":material/cloud_download:")
            _fetch_button(entry["name"], entry["missing"], key)
            return None
        if entry["missing"]:
            st.caption(f"Ready for game folders with its features; videos also need {' + '.join(entry['to_fetch'])}.")
            _fetch_button(entry["name"], entry["missing"], key)
        return Path(entry["path"])
    if choice == "(type a path)":
        typed = st.text_input("Checkpoint path (under the media root)", key=f"{key}_ckpt_path")
        if not typed:
            return None
        path = confine(typed, kind="file")
        if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
            raise SpottingError(f"{typed}: not a checkpoint file ({', '.join(CHECKPOINT_SUFFIXES)})")
        return path
    return Path(choice)


tab_demo, tab_game, tab_results, tab_video = st.tabs(
    ["Demo match", "SoccerNet game folder", "Results folder", "Video file"])

with tab_demo:
    st.markdown("A short **synthetic** match, made on this machine: a generated video with a visible clock "
                "and the events drawn on screen, features and labels from the synthetic benchmark, and a "
                "small frame-saliency model trained on it. No downloads, no GPU.")
    if st.button("Open the demo match", key="open_demo", type="primary", icon=":material/science:"):
        try:
            open_demo()
            st.rerun()
        except SpottingError as e:
            st.error(str(e))

with tab_game:
    st.markdown("A folder with `1_<features>.npy`, `2_<features>.npy` and maybe `Labels-v2.json` and the "
                "half videos (`1_224p.mkv`...). Results are cached: reopening is instant.")
    game = st.text_input("Game folder (under the media root)", key="game_dir", placeholder="england_epl/2016-2017/...")
    try:
        game_ckpt = _checkpoint_picker("game")
    except SpottingError as e:
        game_ckpt = None
        st.error(str(e))
    rebuild = st.checkbox("Spot again even if cached", key="game_rebuild")
    if st.button("Open and spot", key="open_game", type="primary"):
        try:
            folder = confine(game, kind="dir")
            if game_ckpt is None:
                raise SpottingError("pick a checkpoint first")
            planned, cached = game_folder_match(folder, game_ckpt)   # checked now: one line if anything is wrong
            if cached and not rebuild:
                set_match(open_results_folder(planned.folder))
                st.rerun()
            submit("spot_game", {"game_dir": str(folder), "checkpoint": str(game_ckpt), "rebuild": bool(rebuild)},
                   opens_match=True)
            st.toast("Spotting in the background: the match opens when the job is done.", icon=":material/schedule:")
        except SpottingError as e:
            st.error(str(e))

with tab_results:
    st.markdown("A folder written by `spotting spot` (or by this app): `results_spotting.json`, optionally "
                "`<half>_scores.npy`, `<half>_saliency.npy`, `Labels-v2.json` and half videos.")
    res = st.text_input("Results folder (under the media root)", key="results_dir")
    if st.button("Open results", key="open_results", type="primary"):
        try:
            set_match(open_results_folder(confine(res, kind="dir")))
            st.rerun()
        except SpottingError as e:
            st.error(str(e))

with tab_video:
    st.markdown("A broadcast video: features are extracted (and cached next to it), then spotted. Big files: "
                "pick them on the server rather than uploading (uploads are held in memory).")
    source = st.radio("Video", ["On the server", "Upload"], horizontal=True, key="video_source")
    video_path = None
    try:
        if source == "On the server":
            typed = st.text_input("Video path (under the media root)", key="video_path")
            if typed:
                video_path = confine(typed, kind="file")
                if video_path.suffix.lower() not in VIDEO_SUFFIXES:
                    raise SpottingError(f"{typed}: not a video file ({', '.join(VIDEO_SUFFIXES)})")
        else:
            up = st.file_uploader("Upload a video", type=[s[1:] for s in VIDEO_SUFFIXES], key="video_upload",
                                  max_upload_size=max_upload_mb())
            if up is not None:
                if up.size > max_upload_mb() * 1e6:
                    raise SpottingError(f"{up.name}: {up.size / 1e6:.0f} MB is over the {max_upload_mb()} MB upload limit")
                stored = st.session_state.setdefault("video_uploads", {})  # file id -> (path, problem)
                if up.file_id not in stored:  # written once per upload, under a random name, and probed
                    path, problem = store_upload(up.getbuffer(), up.name), ""
                    try:
                        probe(path)
                    except SpottingError as e:
                        problem = str(e).replace(str(path), up.name)
                        path.unlink(missing_ok=True)
                    stored[up.file_id] = (str(path), problem)
                if stored[up.file_id][1]:
                    raise SpottingError(stored[up.file_id][1])
                video_path = Path(stored[up.file_id][0])
        offset = st.number_input("Second half starts at (seconds into the file; 0 = the file is one half)",
                                 min_value=0.0, value=0.0, step=60.0, key="video_half2")
        ckpt = _checkpoint_picker("video")
    except SpottingError as e:
        st.error(str(e))
        video_path, ckpt = None, None
    if st.button("Extract features and spot", key="open_video", type="primary", disabled=video_path is None):
        try:
            if ckpt is None:
                raise SpottingError("pick a checkpoint first")
            planned, cached = video_match(video_path, ckpt, half2_offset_s=float(offset) if offset else None)
            if cached:
                set_match(open_results_folder(planned.folder))
                st.rerun()
            submit("spot_video", {"video": str(video_path), "checkpoint": str(ckpt),
                                  "half2_offset_s": float(offset) if offset else None}, opens_match=True)
            st.toast("Extracting features and spotting in the background: the match opens when the job is done. "
                     "You can leave this page.", icon=":material/schedule:")
        except SpottingError as e:
            st.error(str(e))

st.subheader("Jobs")
jobs_panel()

st.caption(f"Paths are confined to the media root `{media_root()}`.")
