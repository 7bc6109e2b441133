"""The Gradio layout: wires the page's rendering to the app's state."""

from __future__ import annotations

import threading
from typing import Any

from rag.web.page import DEFAULT_K, EXAMPLES, render_footer, render_message
from rag.web.state import (
    API_CONCURRENCY,
    PAGE_CONCURRENCY,
    QUEUE_SIZE,
    AppState,
    ask_html,
    ask_json,
)


def import_in_background(module: str) -> threading.Thread:
    """Start importing `module` on a thread and return it. The app imports Gradio this way
    while it opens the index and the encoder (Gradio's import is most of its start; docs/speed.md,
    "Queries and cold start"). A failed import is left to the caller's own import of the module,
    which raises it on the main thread as usual; the thread itself never raises."""
    import importlib

    def load() -> None:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 (raised again by the caller's own import)
            pass

    thread = threading.Thread(target=load, name=f"import-{module}", daemon=True)
    thread.start()
    return thread


def build_ui(state: AppState) -> Any:
    """The Gradio Blocks app."""
    import gradio as gr

    backend = state.get()
    choices = sorted(
        ((record.title or source) + f" ({source})", source)
        for source, record in backend.manifest.sources.items()
    )

    with gr.Blocks(title="Grounded answers") as demo:
        gr.Markdown(
            "# Ask the sources\nEvery answer is a passage quoted from a source, cited to its "
            "exact place. Nothing is generated.",
            elem_id="title",
        )
        with gr.Row(equal_height=True):
            question = gr.Textbox(
                label="Question",
                placeholder="e.g. Who claimed responsibility for the attack?",
                lines=1,
                max_lines=3,
                scale=5,
                elem_id="question",
            )
            ask = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ask")
        results = gr.HTML(elem_id="results")
        gr.Markdown("Try one:", elem_id="examples-label")
        with gr.Row(elem_id="examples"):
            example_buttons = [gr.Button(e, size="sm", elem_classes=["rag-example"]) for e in EXAMPLES]
        with gr.Accordion("Options", open=False):
            with gr.Row():
                k = gr.Slider(1, 20, value=DEFAULT_K, step=1, label="Passages to show", elem_id="k")
                sources = gr.Dropdown(
                    choices=choices,
                    value=[],
                    multiselect=True,
                    label="Only these sources (optional)",
                    elem_id="sources",
                )
                abstain = gr.Radio(
                    choices=[("Answer when in doubt", "lenient"), ("Say so when in doubt", "strict")],
                    value="lenient",
                    label="When the evidence is weak",
                    elem_id="abstain",
                )
        footer = gr.HTML(render_footer(backend.manifest), elem_id="footer")

        def on_ask(q: str, n: float, chosen: list[str], mode: str) -> tuple[str, str]:
            page = ask_html(state, q, n, chosen, mode)
            return page, render_footer(state.get().manifest)

        def clear() -> str:  # the old result goes the moment a new question is asked
            return render_message("Searching the sources…")

        for event in (question.submit, ask.click):
            event(clear, None, results, queue=False, api_visibility="private").then(
                on_ask, [question, k, sources, abstain], [results, footer], api_visibility="private"
            )
        for button, text in zip(example_buttons, EXAMPLES):  # an example is asked at once
            button.click(lambda t=text: (t, render_message("Searching the sources…")), None, [question, results],
                         queue=False, api_visibility="private").then(
                on_ask, [question, k, sources, abstain], [results, footer], api_visibility="private"
            )

        def ask_api(question: str, k: int = DEFAULT_K) -> dict:
            """Ranked, cited passages for a question: the object `rag ask --json` prints."""
            return ask_json(state, question, k)

        def ask_strict_api(question: str, k: int = DEFAULT_K) -> dict:
            """The same at the strict operating point (`rag ask --json --abstain strict`)."""
            return ask_json(state, question, k, "strict")

        # /ask keeps its two inputs (Gradio's HTTP protocol needs every input a function takes)
        gr.api(ask_api, api_name="ask", concurrency_limit=API_CONCURRENCY)
        gr.api(ask_strict_api, api_name="ask_strict", concurrency_limit=API_CONCURRENCY)
    demo.queue(default_concurrency_limit=PAGE_CONCURRENCY, max_size=QUEUE_SIZE)
    return demo
