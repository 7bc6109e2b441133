"""Stage 2: passages are exact spans, sentence-aligned, within the token budget."""

from __future__ import annotations

import string

import pytest
from conftest import SEEDS
from fakes import HashEncoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking.packing import chunk_document, chunk_documents, pack, pack_balanced
from rag.chunking.sentences import COUNT_BATCH, sentence_units
from rag.sources.files import load_documents
from rag.sources.segments import parse_document
from rag.types import ChunkingConfig

COUNT = HashEncoder().count_tokens

words = st.text(alphabet=string.ascii_letters + "éüøß日本語—’", min_size=1, max_size=12)
sentence = st.builds(
    lambda ws, end: " ".join(ws) + end,
    st.lists(words, min_size=1, max_size=25),
    st.sampled_from([".", "!", "?", "", ".”", "…"]),
)
line = st.one_of(
    st.builds(" ".join, st.lists(sentence, min_size=1, max_size=6)),
    st.builds(lambda s: "- " + s, sentence),
    st.builds(lambda s: "==" + s + "==", words),
    st.sampled_from(["Photo credit, AFP", "-", "Also read on X:", "Short link:", "", "   "]),
    st.builds(lambda ws: " ".join(ws), st.lists(st.text(alphabet="xyz", min_size=30, max_size=200), min_size=1, max_size=3)),
)
document_text = st.builds(
    lambda lines, sep, lead: lead + sep.join(lines),
    st.lists(line, min_size=1, max_size=30),
    st.sampled_from(["\n", "\n\n", "\r\n", " \n\t"]),
    st.sampled_from(["", "\ufeff", "  ", "= Title =\n"]),
)
configs = st.builds(
    ChunkingConfig,
    max_tokens=st.integers(8, 120),
    overlap_sentences=st.integers(0, 3),
    max_context_tokens=st.integers(0, 16),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=document_text, config=configs)
def test_passage_invariants(text: str, config: ChunkingConfig) -> None:
    doc = parse_document("gen.txt", text, "hash")
    if doc is None:  # only blank lines, headings and furniture
        return
    chunks = chunk_document(doc, COUNT, config)
    covered: set[tuple[int, int]] = set()
    previous_start = -1
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.text and c.text == c.text.strip()
        assert c.start > previous_start  # reading order, every passage new
        previous_start = c.start
        assert sum(COUNT([doc.text[a:b] for a, b in c.sentences])) <= config.max_tokens
        assert COUNT([c.context])[0] <= config.max_context_tokens or not c.context
        assert c.sentences[0][0] == c.start and c.sentences[-1][1] == c.end
        assert all(a < b for a, b in c.sentences)
        assert all(b1 <= a2 for (_, b1), (a2, _) in zip(c.sentences, c.sentences[1:]))
        assert any(seg.start <= c.start and c.end <= seg.end for seg in doc.segments)
        covered.update(c.sentences)
    shown = {i for a, b in covered for i in range(a, b)}
    for seg in doc.segments:  # every character of article text is in some passage
        for unit in sentence_units(doc.text, seg):
            whole = any(a <= unit[0] and unit[1] <= b for a, b in covered)
            # a unit over the budget alone is cut into pieces; together they cover its words
            assert whole or all(i in shown for i in range(*unit) if not doc.text[i].isspace()), unit


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(document_text, min_size=1, max_size=4), config=configs)
def test_documents_cut_together_are_cut_as_alone(texts: list[str], config: ChunkingConfig) -> None:
    """Counting every document's sentences in one batch changes no passage."""
    docs = [d for i, t in enumerate(texts) if (d := parse_document(f"gen{i}.txt", t, "hash")) is not None]
    assert chunk_documents(docs, COUNT, config) == [chunk_documents([d], COUNT, config)[0] for d in docs]


def test_sentences_of_all_documents_are_counted_in_one_call():
    """A tokenizer call per segment ran on one core; the units go in batches of COUNT_BATCH."""
    docs = load_documents(SEEDS)
    calls: list[int] = []

    def counting(texts):
        calls.append(len(texts))
        return COUNT(texts)

    config = ChunkingConfig()
    units = sum(len(sentence_units(d.text, s)) for d in docs for s in d.segments)
    assert units <= COUNT_BATCH
    chunk_documents(docs, counting, config)
    assert [n for n in calls if n > 1] == [units]  # every unit in one call, none per segment (contexts go alone)


@given(counts=st.lists(st.integers(1, 30), min_size=1, max_size=60), budget=st.integers(30, 80), overlap=st.integers(0, 3))
def test_pack_covers_everything_in_order(counts, budget, overlap):
    for ranges in (list(pack(counts, budget, overlap)), pack_balanced(counts, budget, overlap)):
        assert ranges[0][0] == 0 and ranges[-1][1] == len(counts)
        for (i1, j1), (i2, j2) in zip(ranges, ranges[1:]):
            assert i1 < i2 and j1 < j2 and i2 <= j1  # moves forward, overlaps or touches
        for i, j in ranges:
            assert sum(counts[i:j]) <= budget
    assert len(pack_balanced(counts, budget, overlap)) <= len(list(pack(counts, budget, overlap)))


def test_overlap_shares_one_sentence():
    doc = parse_document("x.txt", " ".join(f"Sentence number {i} is here." for i in range(12)), "h")
    chunks = chunk_document(doc, COUNT, ChunkingConfig(max_tokens=20, overlap_sentences=1))
    assert len(chunks) > 2
    for a, b in zip(chunks, chunks[1:]):
        assert a.sentences[-1] == b.sentences[0]


def test_sentences_are_not_cut_unless_too_long():
    text = "Short one. " + " ".join(["word"] * 300) + ". Another short one."
    doc = parse_document("x.txt", text, "h")
    chunks = chunk_document(doc, COUNT, ChunkingConfig(max_tokens=50, overlap_sentences=0))
    assert any(c.text.startswith("Short one.") for c in chunks)
    assert any(c.text.endswith("Another short one.") for c in chunks)
    assert len(chunks) >= 6 and all(COUNT([c.text])[0] <= 50 for c in chunks)
    for c in chunks:  # the long sentence is cut between words, never inside one
        assert c.start == 0 or text[c.start - 1] == " "
        assert c.end == len(text) or text[c.end] in " ."


def test_real_seeds_fit_the_model_window(real_encoder):
    config = ChunkingConfig()
    for doc in load_documents(SEEDS):
        for chunk in chunk_document(doc, real_encoder.count_tokens, config):
            assert real_encoder.count_tokens([chunk.embed_text])[0] + 2 <= real_encoder.max_seq_length
            assert doc.text[chunk.start : chunk.end] == chunk.text


def test_config_errors_name_the_parameter():
    with pytest.raises(ValueError, match="max_tokens"):
        ChunkingConfig(max_tokens=0)
    with pytest.raises(ValueError, match="overlap_sentences"):
        ChunkingConfig(overlap_sentences=-1)
