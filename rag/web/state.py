"""The app's live index: the searcher it serves, reloaded after a rebuild, and the two answers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rag.answer import Answer, Searcher, SourceWatch, with_changes
from rag.checks import MAX_QUESTION_CHARS, check_abstain, check_k
from rag.errors import RagError
from rag.locations import on_live
from rag.types import Manifest
from rag.web.page import DEFAULT_K, EXAMPLES, render_answer, render_message

API_CONCURRENCY = 4  # /ask calls answered at once; more wait in the queue
PAGE_CONCURRENCY = 8  # page questions answered at once
QUEUE_SIZE = 64  # requests waiting at most; beyond that Gradio answers "queue is full"


@dataclass(frozen=True)
class Backend:
    """What the app serves from: one index generation and the texts it was built from."""

    searcher: Searcher
    texts: Mapping[str, str]  # source id -> file text as indexed
    watch: SourceWatch | None = None  # which cited files changed on disk since the build

    def ask(self, question: str, k: int, sources: Sequence[str] | None = None, abstain: str = "lenient") -> Answer:
        answer = self.searcher.ask(question, k, sources, abstain)
        return answer if self.watch is None else with_changes(answer, self.watch)

    @property
    def manifest(self) -> Manifest:
        return self.searcher.index.manifest

    @property
    def generation(self) -> str:
        return self.searcher.index.label


class AppState:
    """Holds the live backend. With `current`, a watcher thread polls the name of the index's
    current generation and, when it changes, loads the new one and swaps it in; requests
    already running keep the backend they started with."""

    def __init__(
        self,
        load: Callable[[], Backend],
        current: Callable[[], str | None] | None = None,
        poll_seconds: float = 1.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._load = load
        self._backend = load()
        self._current = current
        self._log = log or (lambda message: None)
        self._stop = threading.Event()
        self._reloading = threading.Lock()
        if current is not None:
            threading.Thread(target=self._watch, args=(poll_seconds,), name="rag-reload", daemon=True).start()

    def get(self) -> Backend:
        return self._backend

    def reload(self) -> Backend:
        """Load the live generation now (the one held was removed under it) and serve it."""
        with self._reloading:
            backend = self._load()
            if backend.generation != self._backend.generation:
                self._backend = backend
                self._log(f"switched to index generation {backend.generation}")
            return self._backend

    def _watch(self, poll_seconds: float) -> None:
        assert self._current is not None
        while not self._stop.wait(poll_seconds):
            try:
                name = self._current()
                if name and name != self._backend.generation:
                    with self._reloading:
                        backend = self._load()
                        self._backend = backend  # one reference assignment: atomic for readers
                        self._log(f"switched to index generation {backend.generation}")
            except Exception as exc:  # keep serving the old generation; try again next poll
                self._log(f"index reload failed ({exc}); still serving {self._backend.generation}")

    def close(self) -> None:
        self._stop.set()


def ask_json(state: AppState, question: str, k: int = DEFAULT_K, abstain: str = "lenient") -> dict[str, Any]:
    """The `/ask` API: the same object as `rag ask --json`."""
    import gradio as gr

    try:
        k, abstain = check_k(k), check_abstain(abstain)
        return on_live(state.get, state.reload, lambda backend: backend.ask(question, k, abstain=abstain).to_json())
    except RagError as exc:
        raise gr.Error(str(exc)) from None


def ask_html(state: AppState, question: str, k: Any, sources: Sequence[str] | None, abstain: str = "lenient") -> str:
    """The page's answer: cards, or a message for an empty or oversized question."""
    question = (question or "").strip()
    if not question:
        return render_message("Type a question first, for example: " + EXAMPLES[0])
    if len(question) > MAX_QUESTION_CHARS:
        return render_message(
            f"That question is {len(question)} characters long; please keep it under "
            f"{MAX_QUESTION_CHARS} characters."
        )
    try:
        k, abstain = check_k(k), check_abstain(abstain)
        return on_live(state.get, state.reload,
                       lambda backend: render_answer(backend.ask(question, k, list(sources or []), abstain), backend.texts))
    except RagError as exc:
        return render_message(str(exc))
