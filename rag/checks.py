"""The rules every way in (CLI, app, API, Python) applies to a question and to k, written once."""

from __future__ import annotations

import math

from rag.errors import RagError

MAX_QUESTION_CHARS = 1000
MAX_K = 100


def check_question(question: object) -> str:
    """The question stripped, or a one-line error for a missing, empty or oversized one."""
    if question is not None and not isinstance(question, str):
        raise RagError(f"the question must be text, got {type(question).__name__}; give it as a string")
    if not isinstance(question, str) or not question.strip():
        raise RagError('the question is empty; ask something, e.g. rag ask "Who claimed the attack?"')
    question = question.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise RagError(f"the question is {len(question)} characters long; keep it under {MAX_QUESTION_CHARS}")
    return question


def check_k(k: object) -> int:
    """k as an int from 1 to MAX_K; whole floats (5.0, as JSON clients send) are accepted."""
    if isinstance(k, float) and math.isfinite(k) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise RagError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}")
    return k


ABSTAIN_MODES = ("lenient", "strict")  # answer when in doubt / abstain when in doubt


def check_abstain(mode: object) -> str:
    """The abstention operating point: lenient (the default) or strict."""
    if mode not in ABSTAIN_MODES:
        raise RagError(f"abstain must be one of {', '.join(ABSTAIN_MODES)}, got {mode!r}")
    return str(mode)
