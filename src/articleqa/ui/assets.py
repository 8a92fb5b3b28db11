"""The page's look: its stylesheet and scripts (static/, read at import) and its Gradio theme."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

STATIC = Path(__file__).resolve().parent / "static"


def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


CSS = _read("app.css")
PAGE_JS = _read("page.js")  # run once the page has loaded
SHOW_LATEST_JS = _read("show_latest.js")  # after a reply
SHOW_CITED_JS = _read("show_cited.js")  # after the reader opens


def theme() -> gr.themes.Base:
    """Gradio's Soft theme with text dark enough to read: every text at least 4.5:1 against its
    background, which Soft's light indigo labels and gray notes are not (axe-core checks it)."""
    return gr.themes.Soft().set(
        body_text_color_subdued="*neutral_600",
        block_label_text_color="*primary_800",
        block_title_text_color="*primary_800",
        block_info_text_color="*neutral_600",
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        checkbox_label_background_fill_selected="*primary_700",
        color_accent="*primary_700",
    )
