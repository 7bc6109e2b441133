"""Stage 5, index/ -> answers: wires question terms, retrieval, fusion, evidence and abstention.

Each stage is a module of pure functions (query, retrieval, fusion, evidence, abstention);
`Searcher` only holds an opened index and an encoder and calls them in order. Search never
writes text: every hit is a span of a source.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from rag.answer.abstention import hit_features
from rag.answer.evidence import (
    Span,
    best_per_candidate,
    missing_words,
    name_missing,
    rarest_missing,
    select_spans,
    sentence_scores,
)
from rag.answer.figures import asked_reader, differ, shifted
from rag.answer.fusion import FusionConfig, Signals, fuse
from rag.answer.missing import shown_missing
from rag.answer.per_source import (
    SUPPORT_FLOOR,
    group,
    ranked_by_source,
    statement_of,
    with_evidence,
)
from rag.answer.query import analyze
from rag.answer.retrieval import Candidates, QueryWeights, query_weights, retrieve
from rag.answer.types import Answer, Figure, Hit, Statement
from rag.checks import check_abstain, check_k, check_question
from rag.encoding import Encoder
from rag.errors import RagError
from rag.index import (
    QUESTION_STOPWORDS,
    Index,
    IndexReader,
    PassageTable,
    idf,
    is_negated,
    present_by_owner,
    stemmer,
)
from rag.models import model_for
from rag.types import AbstentionModel, QueryTerms

BATCH = 64  # questions encoded per model call in batch work
CANDIDATES = 100  # taken from each retriever before fusion
HIGHLIGHT_LEXICAL = 0.3  # weight of question-word coverage when picking a passage's best sentence


class Searcher:
    """Answers questions from one opened index with one encoder."""

    def __init__(self, index: IndexReader, encoder: Encoder, config: FusionConfig | None = None,
                 abstention: AbstentionModel | None = None) -> None:
        if encoder.name != index.manifest.model or encoder.dimension != index.manifest.dimension:
            raise RagError(
                f"the index was built with model '{index.manifest.model}' "
                f"(dimension {index.manifest.dimension}) but the model in use is '{encoder.name}' "
                f"(dimension {encoder.dimension}); rebuild with: rag index --full --model {encoder.name}"
            )
        if encoder.precision != index.manifest.precision:
            raise RagError(
                f"the index's passages were encoded with the model's {index.manifest.precision} copy but the questions "
                f"would be encoded at {encoder.precision}; use the index's own copy (rag ask does), or rebuild with: "
                f"rag index --full --precision {encoder.precision}"
            )
        dense = getattr(index, "dense", None)
        if dense is not None:  # an approximate index searches one question on every core
            dense.share_cores()
        self.index = index
        self.encoder = encoder
        self.config = config or FusionConfig()
        self.abstention = abstention or model_for(index.manifest.abstention, index.manifest.model)
        lexicon = index.lexicon
        n = lexicon.n_docs
        self._idf = idf(lexicon.df.astype(np.float64), n)
        self._unseen_idf = float(idf(np.zeros(1), n)[0])  # a word no passage has
        self._rarest = float(lexicon.term_max.max()) if len(lexicon.term_max) else 1.0
        self._vocab: Mapping[str, int] = lexicon.vocab
        self._stem = stemmer()
        # stems of question words ("has", "since", "who"...): not content when comparing statements
        self._function_terms = frozenset(self._vocab[s] for s in map(self._stem, QUESTION_STOPWORDS) if s in self._vocab)

    @property
    def threshold(self) -> float:
        return self.abstention.threshold

    def ask(self, question: str, k: int = 5, sources: Collection[str] | None = None, abstain: str = "lenient") -> Answer:
        return self.ask_many([question], k, sources, abstain)[0]

    def ask_many(self, questions: Sequence[str], k: int = 5, sources: Collection[str] | None = None,
                 abstain: str = "lenient") -> list[Answer]:
        """Answers in order; the questions are encoded together. `sources` limits the search
        to those source files (all of them when None or empty); `abstain` is the operating
        point (lenient: answer when in doubt; strict: abstain when in doubt)."""
        questions = [check_question(q) for q in questions]
        check_k(k)
        check_abstain(abstain)
        if not questions:
            return []
        vectors = self.encode(questions)
        return [self.answer(q, v, k, sources, abstain) for q, v in zip(questions, vectors)]

    def encode(self, questions: Sequence[str], chunk: int = BATCH) -> np.ndarray:
        """Question vectors, encoded `chunk` at a time (as every batch caller does, so that
        the same question always gets the same vector)."""
        parts = [self.encoder.encode_queries(questions[i : i + chunk]) for i in range(0, len(questions), chunk)]
        return np.concatenate(parts) if parts else np.zeros((0, self.encoder.dimension), np.float32)

    def terms(self, question: str) -> QueryTerms:
        return analyze(question, self._stem, self._vocab)

    def _check_sources(self, sources: Collection[str]) -> None:
        unknown = set(sources) - set(self.index.source_names())
        if unknown:
            raise RagError(f"unknown source {sorted(unknown)[0]!r}; pick one of the indexed files")

    def answer(self, question: str, qvec: np.ndarray, k: int, sources: Collection[str] | None = None,
               abstain: str = "lenient") -> Answer:
        """Rank, trim, highlight and judge one encoded question, and say what each source says;
        `abstain` picks the threshold (AbstentionModel.threshold_for)."""
        threshold = self.abstention.threshold_for(check_abstain(abstain))
        terms = self.terms(question)
        if sources:
            self._check_sources(sources)
        if not len(self.index):
            return Answer(question, False, (), 0.0, threshold, terms.words, abstain=abstain)
        qvec = np.ascontiguousarray(qvec, dtype=np.float32).reshape(-1)
        weights = query_weights(terms, self._idf, self._unseen_idf)
        pool = min(len(self.index), max(CANDIDATES, 4 * k))
        ix, allowed = self.index.view(qvec, terms, pool, sources)
        if not len(ix.passages):
            return Answer(question, False, (), 0.0, threshold, terms.words, abstain=abstain)
        cand = retrieve(ix, qvec, terms, weights, pool, self._rarest, allowed)
        scores = sentence_scores(cand.sentence_cosine, cand.sentence_coverage, HIGHLIGHT_LEXICAL)
        best = best_per_candidate(cand.sentence_owner, scores, len(cand.rows))
        sentence_max = np.maximum.reduceat(cand.sentence_cosine, cand.sentence_first)
        fused = fuse(Signals(cand.dense, sentence_max, cand.lexical, cand.sentence_coverage[best]), self.config)
        order = np.lexsort((cand.rows, -fused))
        gap = fused - float(fused[order[0]])
        chosen = select_spans((int(cand.rows[i]) for i in order), _SourceNames(ix.passages), _Sentences(ix.passages), k)
        source_ids = np.asarray(ix.passages.source_index)[cand.rows[cand.sentence_owner]]
        ranked = ranked_by_source(source_ids, scores)
        said = np.array([j for order in ranked.values() for j in order], dtype=np.int64)  # each source's few best
        hit_at, hit_marked, features, support, found = self._judge(ix, cand, terms, weights, scores, gap, chosen, said)
        n = len(chosen)
        hits = self._hits(ix, chosen, cand, fused, hit_at, hit_marked, features[:n], support[:n])
        missing = missing_words(terms, found[:n].any(axis=0))
        if missing:  # the reader's line: no question frame, no word a shown passage says otherwise
            name_of = dict(zip(terms.words, terms.names or (False,) * len(terms.words)))
            missing = shown_missing(missing, [name_of.get(w, False) for w in missing], [h.text for h in hits], self._stem)
        best_support = max((h.support for h in hits), default=0.0)
        statements, differ = self._by_source(ix, question, cand, scores, source_ids, ranked,
                                             dict(zip(said.tolist(), support[n:].tolist())), threshold)
        return Answer(question, bool(best_support >= threshold), hits, best_support, threshold, missing,
                      statements, differ, abstain=abstain)

    def _sentence(self, ix: Index, cand: Candidates, j: int) -> tuple[str, Span, str]:
        """The source, file span and text of candidate sentence j."""
        row = int(cand.rows[int(cand.sentence_owner[j])])
        a, b = ix.passages.spans[int(cand.sentence_rows[j])].tolist()
        source = ix.passages.source(row)
        return source, (a, b), ix.texts[source][a:b]

    def _features(self, terms: QueryTerms, cand: Candidates, looked: np.ndarray, owner: np.ndarray, n: int,
                  marked: np.ndarray, gap: np.ndarray, ix: Index, weights: QueryWeights) -> tuple[np.ndarray, np.ndarray]:
        """Abstention features of `n` pieces of evidence, hits or statements, and which known
        question terms each holds: candidate sentence `looked[i]` belongs to piece `owner[i]`
        (ascending; every piece has at least one sentence), and piece p marks candidate
        sentence `marked[p]`."""
        found = present_by_owner(ix.sentence_terms, ix.sentence_term_offsets, cand.sentence_rows[looked], owner, n,
                                 weights.known)
        starts = np.searchsorted(owner, np.arange(n))
        # the question's negation is a feature only when the marked sentence does not echo it
        negated = [terms.negated and is_negated(self._sentence(ix, cand, int(j))[2]) for j in marked]
        features = hit_features(
            sentence=np.maximum.reduceat(cand.sentence_cosine[looked], starts),
            passage=cand.dense[cand.sentence_owner[marked]],
            question_negated=terms.negated,
            sentence_negated=np.array(negated, dtype=bool),
            missing=rarest_missing(terms, found, self._idf, self._unseen_idf),
            unseen_share=terms.unseen / max(len(terms.ids), 1),
            score_gap=gap,
            coverage=cand.sentence_coverage[marked],
            missing_name=name_missing(terms, found),
        )
        return features, found

    def _judge(self, ix: Index, cand: Candidates, terms: QueryTerms, weights: QueryWeights, scores: np.ndarray,
               gap: np.ndarray, chosen: Sequence[tuple[int, int, int]],
               said: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The chosen hits' candidate and marked sentence, then the features, support and known
        question terms present of the hits followed by the candidate statements `said` (one
        sentence each, as if marked in a top hit), in one pass: a row's features and support
        depend on that row alone."""
        at, sentences, owner, marked = self._hit_sentences(chosen, cand, scores)
        n = len(chosen)
        features, found = self._features(
            terms, cand, np.concatenate([sentences, said]), np.concatenate([owner, n + np.arange(len(said))]),
            n + len(said), np.concatenate([marked, said]), np.concatenate([gap[at], np.zeros(len(said))]), ix, weights)
        return at, marked, features, self.abstention.support(features), found

    @staticmethod
    def _hit_sentences(chosen: Sequence[tuple[int, int, int]], cand: Candidates,
                       scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For the chosen (row, first, last) sentence ranges: each one's candidate, the candidate
        sentences they show with the hit owning each, and each hit's marked (best) sentence."""
        at = np.searchsorted(cand.rows, [row for row, _, _ in chosen]).astype(np.int64)
        shown = [np.arange(cand.sentence_first[i] + first, cand.sentence_first[i] + last)
                 for i, (_, first, last) in zip(at.tolist(), chosen)]
        looked = np.concatenate(shown) if shown else np.zeros(0, dtype=np.int64)
        owner = np.repeat(np.arange(len(shown)), [len(x) for x in shown])
        marked = np.array([int(x[int(np.argmax(scores[x]))]) for x in shown], dtype=np.int64)
        return at, looked, owner, marked

    def _hits(self, ix: Index, chosen: Sequence[tuple[int, int, int]], cand: Candidates, fused: np.ndarray,
              at: np.ndarray, marked: np.ndarray, features: np.ndarray, support: np.ndarray) -> tuple[Hit, ...]:
        """The hits of the chosen (row, first, last) sentence ranges, candidate `at` and marked
        sentence `marked` of each, with their features and support."""
        hits = []
        for rank, ((row, first, last), i, pick) in enumerate(zip(chosen, at.tolist(), marked.tolist()), start=1):
            source, highlight, _ = self._sentence(ix, cand, pick)
            spans = ix.passages.sentences(row)
            start, end = spans[first][0], spans[last - 1][1]
            hits.append(Hit(
                rank=rank, score=float(fused[i]), source=source, title=self.index.title(source), start=start, end=end,
                text=ix.texts[source][start:end], highlight=highlight, passage_id=int(ix.ids[row]),
                support=float(support[rank - 1]), features=tuple(features[rank - 1].tolist()),
            ))
        return tuple(hits)

    def _by_source(self, ix: Index, question: str, cand: Candidates, scores: np.ndarray, source_ids: np.ndarray,
                   ranked: Mapping[str | int, list[int]], support: Mapping[int, float],
                   threshold: float) -> tuple[tuple[Statement, ...], bool]:
        """Each source's statement: its best sentence (picked as a passage's marked sentence is),
        supported as if marked in the top hit of a search limited to that source (`support`, of
        each of the `ranked` sentences of each source); grouped, with the figures the question
        asks for."""
        read_figures = asked_reader(question)
        figures_of: dict[int, tuple[Figure, ...]] = {}

        def figures(j: int) -> tuple[Figure, ...]:
            if read_figures is None:
                return ()
            if j not in figures_of:
                _, span, text = self._sentence(ix, cand, j)
                figures_of[j] = shifted(read_figures(text), span[0])
            return figures_of[j]

        if not ranked:
            return (), False
        floor = max(threshold, SUPPORT_FLOOR)
        shown = (lambda j: support[j] >= floor and bool(figures(j))) if read_figures is not None else None
        picks = [statement_of(order, scores, shown) for order in ranked.values()]
        chosen = with_evidence(picks, support, cand.sentence_cosine, threshold)
        if not chosen:
            return (), False
        flat, offsets = ix.sentence_terms, ix.sentence_term_offsets
        term_sets = [frozenset(flat[offsets[r] : offsets[r + 1]].tolist()) - self._function_terms for r in cand.sentence_rows[chosen]]
        found_figures = [figures(j) for j in chosen]
        groups = group(term_sets, found_figures)
        names = [ix.passages.sources[int(source_ids[j])] for j in chosen]
        statements = []
        for n, j in enumerate(chosen):
            source, span, text = self._sentence(ix, cand, j)
            others = tuple(names[m] for m in range(len(chosen)) if groups[m] == groups[n] and m != n)
            statements.append(Statement(source, self.index.title(source), span[0], span[1], text, span,
                                        float(support[j]), found_figures[n], groups[n], others))
        return tuple(statements), differ([list(f) for f in found_figures])


class _SourceNames(Sequence[str]):
    """The source of each passage row, read from the table's columns."""

    def __init__(self, table: PassageTable) -> None:
        self._table = table

    def __len__(self) -> int:
        return len(self._table)

    def __getitem__(self, row: int) -> str:  # type: ignore[override]
        return self._table.source(row)


class _Sentences(Sequence[tuple[Span, ...]]):
    """The sentence spans of each passage row, read from the table's columns."""

    def __init__(self, table: PassageTable) -> None:
        self._table = table

    def __len__(self) -> int:
        return len(self._table)

    def __getitem__(self, row: int) -> tuple[Span, ...]:  # type: ignore[override]
        return self._table.sentences(row)
