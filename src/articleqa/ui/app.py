"""The page: its panels laid out (settings, chat, library, reader) and their events wired to Handlers."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from articleqa.library import Library
from articleqa.settings import MODES
from articleqa.ui import assets, conversations
from articleqa.ui.examples import example_questions
from articleqa.ui.handlers import MAX_K, Handlers
from articleqa.ui.limits import MAX_DOCUMENT_UPLOAD_BYTES, MAX_UPLOAD_BYTES, UPLOAD_TYPES

# Questions run side by side (the library is read through immutable snapshots); changes queue up
# one at a time in their own group, so an upload being embedded never holds up a question.
READ_LIMIT = 8
_READ = dict(concurrency_id="read", concurrency_limit=READ_LIMIT)
_WRITE = dict(api_visibility="undocumented", concurrency_id="write", concurrency_limit=1)
# Uploads and links are read in worker processes outside the write lane (two at a time), then
# wait their turn in it (Lifecycle.write_turn): a slow file holds up no other upload.
_ADD = dict(api_visibility="undocumented", concurrency_id="add", concurrency_limit=2)
_PRIVATE = dict(api_visibility="private")


@dataclass
class App:
    """The Gradio app and the handlers behind it (their Lifecycle and API check are what the
    server's launch, stop and forget_api_sessions need)."""

    blocks: gr.Blocks
    handlers: Handlers

    @property
    def local_url(self) -> str | None:
        return self.blocks.local_url

    def close(self) -> None:
        self.blocks.close()


def build_app(lib: Library) -> App:
    """The Gradio app over `lib`: chat, settings, library management and the /ask and /search API."""
    handlers = Handlers(lib)
    with gr.Blocks(title="articleqa", analytics_enabled=False) as blocks:
        page = _Page(blocks, handlers)
        page.lay_out(example_questions(lib))
        page.wire()
    return App(blocks, handlers)


class _Page:
    """The page's components, made panel by panel (Gradio numbers them in that order), then the
    events wired in a fixed order (it names the private endpoints: chat, chat_1, ...)."""

    def __init__(self, blocks: gr.Blocks, handlers: Handlers) -> None:
        self.blocks = blocks
        self.h = handlers

    def lay_out(self, examples: list[str]) -> None:
        self.asked = gr.State([])  # this session's questions, oldest first: the follow-up context
        self.turns = gr.State([])  # this conversation's answers as Markdown, with citations (the export)
        self.saved = gr.BrowserState(
            conversations.empty(), storage_key="articleqa-conversations", secret=conversations.browser_secret()
        )
        self._settings()
        with gr.Tabs(selected="chat") as self.tabs:
            self._chat_tab(examples)
            self._library_tab()
            self._reader_tab()
        # Filled in by the page's script when a "Read the whole article" link is clicked.
        self.read_request = gr.Textbox(elem_id="aqa-read-request", elem_classes="aqa-hidden", show_label=False)
        self.read_go = gr.Button("Open", elem_id="aqa-read-go", elem_classes="aqa-hidden")

    def wire(self) -> None:
        self._wire_chat()
        self._wire_reader()
        self._wire_library()
        gr.api(self.h.api_ask, api_name="ask", **_READ)
        gr.api(self.h.api_search, api_name="search", **_READ)

    # -- layout -----------------------------------------------------------------------------------

    def _settings(self) -> None:
        """The sidebar: search settings, the library's size, past conversations."""
        settings = self.h.lib.settings
        with gr.Sidebar(label="Settings", open=True):
            gr.Markdown("### articleqa\nAnswers from your articles, with the passages that say so.")
            self.k = gr.Slider(1, MAX_K, value=min(settings.k, MAX_K), step=1, label="Passages to cite")
            self.mode = gr.Radio(
                list(MODES),
                value=settings.mode,
                label="Search mode",
                info="hybrid: meaning + keywords; dense: meaning only; keyword: exact words (BM25)",
            )
            self.summary = gr.Markdown(elem_id="aqa-summary")
            gr.Markdown("#### Conversations\nKept in this browser only.")
            self.past = gr.Radio(choices=[], label="Past conversations", elem_id="aqa-past", show_label=False)
            with gr.Row():
                self.new_chat = gr.Button("New", size="sm", elem_id="aqa-new-chat")
                self.forget = gr.Button("Delete", size="sm", elem_id="aqa-forget", variant="stop")
            self.export = gr.DownloadButton("Export as Markdown", size="sm", elem_id="aqa-export", value=None)

    def _chat_tab(self, examples: list[str]) -> None:
        with gr.Tab("Chat", id="chat") as self.chat_tab:
            self.chatbot = gr.Chatbot(
                elem_id="aqa-chat",
                autoscroll=False,  # static/show_latest.js scrolls to the question and its answer instead
                show_label=False,
                height="72vh",
                layout="bubble",
                placeholder="Ask a question about the articles. Every answer cites the passages it comes from.",
                examples=[{"text": q} for q in examples] or None,
                # Replies are HTML built by render.py with every article and user string escaped;
                # Gradio's sanitizer stays on as a second line of defence.
                sanitize_html=True,
                latex_delimiters=[],
                allow_tags=False,
                feedback_options=None,
                buttons=[],  # a copy of a reply would be its HTML source
            )
            with gr.Row(equal_height=True):
                self.question = gr.Textbox(
                    label="Your question",  # read by screen readers; the placeholder says the same
                    placeholder="Ask a question about the articles…",
                    show_label=False,
                    scale=8,
                    max_lines=4,
                    elem_id="aqa-question",
                    autofocus=True,
                )
                self.send = gr.Button("Ask", variant="primary", scale=1, elem_id="aqa-ask")

    def _library_tab(self) -> None:
        with gr.Tab("Library", id="library") as self.library_tab:
            self.removed = gr.State(None)  # the article this visitor just removed, for Undo
            self.busy = gr.State(False)
            self.watch = gr.Timer(2.0, active=False)
            self.busy_note = gr.HTML(elem_id="aqa-activity")
            gr.Textbox(
                label="Filter the list",
                placeholder="a word of the title, source or id",
                elem_id="aqa-filter",
                max_lines=1,
            )
            self.table = gr.HTML(elem_id="aqa-library")
            with gr.Row():
                with gr.Column():
                    self._adding()
                with gr.Column():
                    self._removing()
            self.status = gr.HTML(elem_id="aqa-status")

    def _adding(self) -> None:
        self.files = gr.File(
            label=(
                f"Add articles ({', '.join(UPLOAD_TYPES)}; up to {MAX_UPLOAD_BYTES // 2**20} MB of"
                f" text or {MAX_DOCUMENT_UPLOAD_BYTES // 2**20} MB for PDF, DOCX and EPUB)"
            ),
            file_count="multiple",
            file_types=list(UPLOAD_TYPES),
            elem_id="aqa-upload",
        )
        with gr.Row():
            self.link = gr.Textbox(
                label="Add from a link",
                placeholder="https://…",
                elem_id="aqa-link",
                scale=4,
            )
            self.fetch_link = gr.Button("Add link", elem_id="aqa-add-link", scale=1, min_width=90)
        self.stop_adding = gr.Button("Cancel adding", elem_id="aqa-cancel", size="sm", variant="secondary")

    def _removing(self) -> None:
        self.chosen = gr.Dropdown(label="Remove an article", choices=[], elem_id="aqa-remove-choice")
        self.drop = gr.Button("Remove", variant="stop", elem_id="aqa-remove")
        with gr.Row(visible=False) as self.confirm_row:
            self.confirm = gr.Button("Yes, remove it", variant="stop", elem_id="aqa-remove-confirm")
            self.keep_it = gr.Button("Keep it", elem_id="aqa-remove-keep")
        self.undo = gr.Button("Undo the removal", visible=False, elem_id="aqa-undo")

    def _reader_tab(self) -> None:
        with gr.Tab("Reader", id="reader"):
            self.reader = gr.HTML(
                '<p class="aqa-note">Choose <em>Read the whole article</em> under a cited passage.</p>',
                elem_id="aqa-reader",
            )
            self.original = gr.DownloadButton("Download the original file", visible=False, elem_id="aqa-original")

    # -- events -----------------------------------------------------------------------------------

    def _wire_chat(self) -> None:
        """Asking (Enter, the button, an example), then the conversations and settings kept in the browser."""
        h, chatbot = self.h, self.chatbot
        chat_io = dict(
            inputs=[self.question, chatbot, self.asked, self.k, self.mode, self.turns],
            outputs=[self.question, chatbot, self.asked, self.turns],
        )
        shown = dict(fn=None, js=assets.SHOW_LATEST_JS, **_PRIVATE)
        conversation = [chatbot, self.asked, self.turns, self.saved, self.past, self.export]
        kept = dict(fn=h.save, inputs=conversation[:4], outputs=[self.saved, self.past, self.export], **_PRIVATE)
        for replied in (
            self.question.submit(h.chat, **chat_io, api_name="chat", api_visibility="undocumented", **_READ),
            self.send.click(h.chat, **chat_io, api_visibility="private", **_READ),
            chatbot.example_select(
                h.pick_example,
                inputs=[chatbot, self.asked, self.k, self.mode, self.turns],
                outputs=chat_io["outputs"],
                api_visibility="private",
                **_READ,
            ),
        ):
            replied.then(**shown)
            replied.then(**kept)
        self.blocks.load(h.reopen, inputs=[self.saved, chatbot], outputs=[*conversation, self.k, self.mode], **_PRIVATE)
        self.past.input(h.open_past, inputs=[self.past, self.saved], outputs=conversation, **_PRIVATE).then(**shown)
        # One bound method for all triggers of a handler, as for a plain function: Gradio queues the
        # events of one function object together (its default concurrency group is id(fn)).
        start_new, keep_settings = h.start_new, h.keep_settings
        self.new_chat.click(start_new, inputs=self.saved, outputs=conversation, **_PRIVATE)
        chatbot.clear(start_new, inputs=self.saved, outputs=conversation, **_PRIVATE)
        self.forget.click(h.forget_current, inputs=self.saved, outputs=conversation, **_PRIVATE)
        for setting in (self.k, self.mode):
            setting.input(keep_settings, inputs=[self.k, self.mode, self.saved], outputs=self.saved, **_PRIVATE)

    def _wire_reader(self) -> None:
        self.read_go.click(
            self.h.open_reader, inputs=self.read_request, outputs=[self.reader, self.tabs, self.original], **_PRIVATE
        ).then(fn=None, js=assets.SHOW_CITED_JS, **_PRIVATE)

    def _wire_library(self) -> None:
        """Adding, cancelling and removing (one change at a time), and the list kept current."""
        h, status, watch = self.h, self.status, self.watch
        view = [self.table, self.chosen, self.summary]
        uploading = self.files.upload(
            h.upload,
            inputs=self.files,
            outputs=[self.files, status, *view],
            api_name="upload",
            show_progress_on=self.files,
            **_ADD,
        )
        self.drop.click(h.ask_remove, inputs=self.chosen, outputs=[status, self.confirm_row], **_PRIVATE)
        self.confirm.click(
            h.remove,
            inputs=self.chosen,
            outputs=[status, *view, self.confirm_row, self.undo, self.removed],
            api_name="remove",
            **_WRITE,
        )
        self.keep_it.click(h.keep, outputs=[status, self.confirm_row], **_PRIVATE)
        self.undo.click(
            h.restore, inputs=self.removed, outputs=[status, *view, self.undo, self.removed], **{**_WRITE, **_PRIVATE}
        )
        watch.tick(
            h.activity, inputs=self.busy, outputs=[self.busy_note, *view, self.busy], **_PRIVATE, show_progress="hidden"
        )
        self.library_tab.select(lambda: gr.Timer(active=True), outputs=watch, **_PRIVATE)
        link_io = dict(inputs=self.link, outputs=[self.link, status, *view], show_progress_on=self.link, **_ADD)
        fetching = self.fetch_link.click(h.add_link, api_name="add_link", **link_io)
        submitted = self.link.submit(h.add_link, **{**link_io, **_PRIVATE})
        # Not in the write lane (it would wait behind the change it cancels); queued changes of
        # this visitor are dropped by Gradio, the running one stops at its next step.
        self.stop_adding.click(
            h.cancel,
            outputs=status,
            cancels=[uploading, fetching, submitted],
            api_name="cancel",
            api_visibility="undocumented",
        )
        self.chat_tab.select(lambda: gr.Timer(active=False), outputs=watch, **_PRIVATE)
        library_view = h.library_view  # one object for both triggers, as in _wire_chat
        for trigger in (self.blocks.load, self.library_tab.select):
            trigger(library_view, outputs=view, **_PRIVATE)
