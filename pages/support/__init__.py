"""App-only helpers beside the pages (no widgets, no streamlit import); the library never imports them."""
