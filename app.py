"""narrative-compare in the browser: `make app` (or `streamlit run app.py`), then open the printed URL.

Three pages: Ask (question -> sources side by side, change over time, agreement/difference/omission,
downloads), Corpus (add, inspect, delete) and History (reopen past results). Layout only: the work is done by
the `compare` library. Serving settings (127.0.0.1, headless, no usage statistics) are in .streamlit/config.toml.
"""

import streamlit as st

st.set_page_config(page_title="narrative-compare", page_icon=":material/compare_arrows:", layout="wide")
pages = [
    st.Page("pages/ask.py", title="Ask", icon=":material/compare_arrows:", default=True),
    st.Page("pages/corpus.py", title="Corpus", icon=":material/library_books:"),
    st.Page("pages/history.py", title="History", icon=":material/history:"),
]
st.navigation(pages, position="top").run()
