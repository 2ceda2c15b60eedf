"""The highlight-review app: `streamlit run app.py` (or `make run`)."""

import streamlit as st

st.set_page_config(page_title="Spotting", layout="wide")
st.title("Action spotting")
st.info("The review app is being built; see README.md.")
