"""Past questions and their results, kept in the data dir: reopen one exactly as it was, or delete it."""

from __future__ import annotations

import streamlit as st

from compare.history import HistoryEntry
from compare.render import escape_markdown
from pages import common

PAGE_SIZE = 50


def reopen(entry: HistoryEntry) -> None:
    with common.guarded():
        comparison = common.history().get(entry.id)
        if comparison is None:
            st.warning("This entry is gone (deleted in another window?).")
            return
        st.session_state["comparison"] = comparison
        st.session_state["reopened"] = entry.created_at.replace("T", " ").removesuffix("Z") + " UTC"
        st.session_state["question"] = comparison.question
        st.session_state.pop("pending", None)
        st.switch_page("pages/ask.py")


def entry_row(entry: HistoryEntry) -> None:
    with st.container(border=True):
        text, open_col, delete_col = st.columns([8, 1, 1], vertical_alignment="center")
        when = entry.created_at.replace("T", " ").removesuffix("Z")
        sources = ", ".join(entry.sources) or "no source"
        text.markdown(f"**{escape_markdown(entry.question)}**")
        text.caption(escape_markdown(f"{when} UTC · {entry.backend} · {sources}"))
        if open_col.button("Open", key=f"open_{entry.id}", icon=":material/open_in_new:"):
            reopen(entry)
        if delete_col.button("Delete", key=f"delete_{entry.id}", icon=":material/delete:"):
            with common.guarded():
                common.history().delete(entry.id)
                st.rerun()


def main() -> None:
    st.title("History", anchor=False)
    st.caption(f"Every comparison is saved in {escape_markdown(common.history().path)}.")
    contains = st.text_input("Search questions", key="history_search", placeholder="e.g. Ukraine")
    entries: list[HistoryEntry] = []
    with common.guarded():
        entries = common.history().entries(PAGE_SIZE, contains=contains.strip() or None)
    if not entries:
        st.info("No saved comparison yet: ask a question on the Ask page." if not contains else "No match.")
        return
    for entry in entries:
        entry_row(entry)
    if st.button("Clear history", key="history_clear", icon=":material/delete_sweep:"):
        with common.guarded():
            common.history().clear()
            st.rerun()


main()
