"""The highlight-review app: `streamlit run app.py` (or `make run`).

`streamlit run` finds the `st.App` below and serves the app with two extra read-only routes:
/media-files/root (the media root, $SPOTTING_MEDIA_ROOT) and /media-files/cache (the app's cache),
so videos stream with HTTP Range requests instead of being read into memory on every rerun; they
serve media files only. Before serving, it refuses to start beyond loopback without a login
(pages/support/access.py: st.login, a trusted proxy header, or SPOTTING_ALLOW_ANONYMOUS=1).
Every rerun executes this same file as `__main__`: the login gate, the router and the shared sidebar.
"""

import streamlit as st

if __name__ != "__main__":  # imported by `streamlit run` (uvicorn) as the ASGI entry point
    from streamlit.runtime.pages_manager import PagesManager

    from pages.support.access import refuse_unsafe_start
    from pages.support.server import media_routes

    refuse_unsafe_start()  # one line on stderr and exit 2 when bound beyond loopback without a login
    # pages/ holds the st.navigation pages below, not v1 auto-discovered pages: without this, a
    # browser that opens /timeline before any session ran this router gets the v1 page list.
    PagesManager.uses_pages_directory = False
    app = st.App(__file__, routes=media_routes())
else:
    from pages.common import guarded, sidebar
    from pages.support.access import gate

    st.set_page_config(page_title="Spotting review", page_icon=":material/sports_soccer:", layout="wide")
    gate()  # the login wall where one is configured; the banner when open to anyone
    pages = [
        st.Page("pages/match.py", title="Match", icon=":material/movie:", default=True),
        st.Page("pages/timeline.py", title="Timeline", icon=":material/timeline:"),
        st.Page("pages/review.py", title="Review", icon=":material/fact_check:"),
        st.Page("pages/highlights.py", title="Highlights", icon=":material/content_cut:"),
        st.Page("pages/models.py", title="Models", icon=":material/model_training:"),
    ]
    page = st.navigation(pages)
    guarded(sidebar)   # the one place errors are caught: one line in the page, never a traceback
    guarded(page.run)
