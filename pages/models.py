"""Models: the registered models, the checkpoints on disk, and Average-mAP of this match against its labels."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages.common import current_match, match_arrays, match_labels, reviewed_events
from pages.support.catalog import checkpoint_dirs, checkpoint_table, list_checkpoints, models_table
from spotting_core.engine.evaluate import evaluate_tables
from spotting_core.errors import SpottingError
from spotting_core.io.soccernet import CLASSES_V2
from spotting_core.review.matches import load_events

st.header("Models")


@st.cache_data(show_spinner="Counting parameters")
def _models(input_dim: int) -> pd.DataFrame:
    return models_table(input_dim)


@st.cache_data(show_spinner="Reading checkpoints", ttl=60)
def _checkpoints(paths: tuple[str, ...]) -> pd.DataFrame:
    from pathlib import Path

    return checkpoint_table([Path(p) for p in paths])


dim = st.number_input("Feature dimension", min_value=8, max_value=8192, value=512, step=8, key="models_dim")
st.subheader("Registered models")
st.dataframe(_models(int(dim)), hide_index=True, column_config={
    "parameters": st.column_config.NumberColumn("parameters", format="localized")})

st.subheader("Checkpoints on disk")
st.caption("Looked for in: " + ", ".join(f"`{d}`" for d in checkpoint_dirs()))
found = tuple(str(p) for p in list_checkpoints())
if not found:
    st.info("No checkpoint found. Train one with `spotting train ... --out <media root>/model.pt`.")
else:
    table = _checkpoints(found)
    st.dataframe(table, hide_index=True)
    for row in table[table["problem"] != ""].itertuples():
        st.warning(row.problem)

st.subheader("This match against its labels")
match = current_match()
if match is None:
    st.info("Open a match on the Match page to evaluate it.")
    st.stop()
labels = match_labels(match)
if labels is None:
    st.info(f"{match.name} has no labels (Labels-v2.json), so it cannot be evaluated.")
    st.stop()
metric = st.segmented_control("Metric", ["loose", "tight"], default="loose", key="models_metric", required=True)
arrays = match_arrays(match)
frames = [len(arrays[h]["scores"]) if h in arrays and "scores" in arrays[h] else None for h in (1, 2)]
num_frames = tuple(frames) if all(frames) else None
try:
    model_events = load_events(match)
    reviewed = reviewed_events(match)
    reviewed = reviewed[reviewed["status"] != "rejected"]
    res_model = evaluate_tables(labels, model_events, metric=metric, num_frames=num_frames)
    res_review = evaluate_tables(labels, reviewed, metric=metric, num_frames=num_frames)
except SpottingError as e:
    st.error(str(e))
    st.stop()
c1, c2, c3 = st.columns(3)
c1.metric("Average-mAP (model)", f"{res_model['a_mAP']:.3f}")
c2.metric("Average-mAP (after review)", f"{res_review['a_mAP']:.3f}",
          delta=f"{res_review['a_mAP'] - res_model['a_mAP']:+.3f}")
c3.metric("visible / unshown (model)", f"{res_model['a_mAP_visible']:.3f} / {res_model['a_mAP_unshown']:.3f}")
per_class = pd.DataFrame({
    "class": list(CLASSES_V2),
    "labels": [int((labels["label"] == c).sum()) for c in CLASSES_V2],
    "events": [int((model_events["label"] == c).sum()) for c in CLASSES_V2],
    "AP (model)": res_model["a_mAP_per_class"],
    "AP (after review)": res_review["a_mAP_per_class"],
})
st.dataframe(per_class, hide_index=True, key="models_per_class")
fig = go.Figure([go.Bar(x=per_class["class"], y=per_class["AP (model)"], name="model"),
                 go.Bar(x=per_class["class"], y=per_class["AP (after review)"], name="after review")])
fig.update_layout(barmode="group", height=360, yaxis={"title": f"Average-AP ({metric})", "range": [0, 1]},
                  margin={"l": 40, "r": 10, "t": 30, "b": 90})
st.plotly_chart(fig, key="models_plot")
if match.synthetic:
    st.caption("Synthetic demo: these figures measure the demo model on synthetic data, not on real matches.")
