"""Stage 5, index/ -> answers: wires question terms, retrieval, fusion, evidence and abstention.

Each stage is a module of pure functions (query, retrieval, fusion, evidence, abstention);
`Searcher` only holds an opened index and an encoder and calls them in order. Search never
writes text: every hit is a span of a source.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from .abstention import AbstentionModel, hit_features, model_for
from .checks import check_k, check_question
from .embedding import Encoder
from .errors import RagError
from .evidence import best_per_candidate, missing_words, name_missing, rarest_missing, select_spans, sentence_scores
from .fusion import FusionConfig, Signals, fuse
from .lexical import idf, present
from .query import QueryTerms, analyze
from .retrieval import Candidates, QueryWeights, query_weights, retrieve
from .store import Index
from .terms import is_negated, stemmer
from .types import Answer, Hit

BATCH = 64  # questions encoded per model call in batch work
CANDIDATES = 100  # taken from each retriever before fusion
HIGHLIGHT_LEXICAL = 0.3  # weight of question-word coverage when picking a passage's best sentence


class Searcher:
    """Answers questions from one opened index with one encoder."""

    def __init__(self, index: Index, encoder: Encoder, config: FusionConfig | None = None,
                 abstention: AbstentionModel | None = None) -> None:
        if encoder.name != index.manifest.model or encoder.dimension != index.manifest.dimension:
            raise RagError(
                f"the index was built with model '{index.manifest.model}' "
                f"(dimension {index.manifest.dimension}) but the model in use is '{encoder.name}' "
                f"(dimension {encoder.dimension}); rebuild with: rag index --full --model {encoder.name}"
            )
        import faiss

        # One query at a time: OpenMP's start-up costs more than it saves (0.4 vs 1.8 ms on
        # 5.5k passages, 2 cores); batch callers may raise it again.
        faiss.omp_set_num_threads(1)
        self.index = index
        self.encoder = encoder
        self.config = config or FusionConfig()
        self.abstention = abstention or model_for(index.manifest.abstention, index.manifest.model)
        n = len(index.passages)
        self._idf = idf(np.diff(np.asarray(index.bm25.scores["indptr"])).astype(np.float64), n)
        self._unseen_idf = float(idf(np.zeros(1), n)[0])  # a word no passage has
        self._rarest = float(index.term_max.max()) if len(index.term_max) else 1.0
        self._vocab: dict[str, int] = index.bm25_tokenizer.get_vocab_dict()
        self._stem = stemmer()
        self._sources = [p.source for p in index.passages]
        self._sentences = [p.sentences for p in index.passages]
        rows: dict[str, list[int]] = {}
        for row, source in enumerate(self._sources):
            rows.setdefault(source, []).append(row)
        self._rows_of_source = {s: np.array(r, dtype=np.int64) for s, r in rows.items()}

    @property
    def threshold(self) -> float:
        return self.abstention.threshold

    def ask(self, question: str, k: int = 5, sources: Collection[str] | None = None) -> Answer:
        return self.ask_many([question], k, sources)[0]

    def ask_many(self, questions: Sequence[str], k: int = 5, sources: Collection[str] | None = None) -> list[Answer]:
        """Answers in order; the questions are encoded together. `sources` limits the search
        to those source files (all of them when None or empty)."""
        questions = [check_question(q) for q in questions]
        check_k(k)
        if not questions:
            return []
        vectors = self.encode(questions)
        return [self.answer(q, v, k, sources) for q, v in zip(questions, vectors)]

    def encode(self, questions: Sequence[str], chunk: int = BATCH) -> np.ndarray:
        """Question vectors, encoded `chunk` at a time (as every batch caller does, so that
        the same question always gets the same vector)."""
        parts = [self.encoder.encode_queries(questions[i : i + chunk]) for i in range(0, len(questions), chunk)]
        return np.concatenate(parts) if parts else np.zeros((0, self.encoder.dimension), np.float32)

    def terms(self, question: str) -> QueryTerms:
        return analyze(question, self._stem, self._vocab)

    def _allowed_rows(self, sources: Collection[str]) -> np.ndarray:
        unknown = set(sources) - set(self._rows_of_source)
        if unknown:
            raise RagError(f"unknown source {sorted(unknown)[0]!r}; pick one of the indexed files")
        return np.sort(np.concatenate([self._rows_of_source[s] for s in sources]))

    def answer(self, question: str, qvec: np.ndarray, k: int, sources: Collection[str] | None = None) -> Answer:
        """Rank, trim, highlight and judge one encoded question."""
        threshold = self.abstention.threshold
        terms = self.terms(question)
        if not len(self.index.passages):
            return Answer(question, False, (), 0.0, threshold, terms.words)
        qvec = np.ascontiguousarray(qvec, dtype=np.float32).reshape(-1)
        weights = query_weights(terms, self._idf, self._unseen_idf)
        allowed = self._allowed_rows(sources) if sources else None
        pool = min(len(self.index.passages), max(CANDIDATES, 4 * k))
        cand = retrieve(self.index, qvec, terms, weights, pool, self._rarest, allowed)
        scores = sentence_scores(cand.sentence_cosine, cand.sentence_coverage, HIGHLIGHT_LEXICAL)
        best = best_per_candidate(cand.sentence_owner, scores, len(cand.rows))
        sentence_max = np.maximum.reduceat(cand.sentence_cosine, cand.sentence_first)
        fused = fuse(Signals(cand.dense, sentence_max, cand.lexical, cand.sentence_coverage[best]), self.config)
        order = np.lexsort((cand.rows, -fused))
        chosen = select_spans((int(cand.rows[i]) for i in order), self._sources, self._sentences, k)
        position = {int(cand.rows[i]): int(i) for i in order}
        top = float(fused[order[0]]) if len(order) else 0.0
        hits = [self._hit(rank, position[row], first, last, cand, fused, top, scores, terms, weights)
                for rank, (row, first, last) in enumerate(chosen, start=1)]
        shown = np.concatenate([cand.sentence_rows[self._shown(position[row], first, last, cand)] for row, first, last in chosen]) if chosen else np.zeros(0, np.int64)
        missing = missing_words(terms, self._present(shown, weights))
        best_support = max((h.support for h in hits), default=0.0)
        return Answer(question, bool(best_support >= threshold), tuple(hits), best_support, threshold, missing)

    def _shown(self, i: int, first: int, last: int, cand: Candidates) -> np.ndarray:
        """Indices (into the candidate sentence arrays) of the sentences a hit shows."""
        return np.arange(cand.sentence_first[i] + first, cand.sentence_first[i] + last)

    def _present(self, shown: np.ndarray, weights: QueryWeights) -> np.ndarray:
        return present(self.index.sentence_terms, self.index.sentence_term_offsets, shown, weights.known)

    def _hit(self, rank: int, i: int, first: int, last: int, cand: Candidates, fused: np.ndarray, top: float,
             scores: np.ndarray, terms: QueryTerms, weights: QueryWeights) -> Hit:
        row = int(cand.rows[i])
        passage = self.index.passages[row]
        spans = passage.sentences[first:last]
        start, end = spans[0][0], spans[-1][1]
        shown = self._shown(i, first, last, cand)
        pick = int(np.argmax(scores[shown]))
        highlight = spans[pick]
        marked = passage.text[highlight[0] - passage.start : highlight[1] - passage.start]
        found = self._present(cand.sentence_rows[shown], weights)
        missing = rarest_missing(terms, found, self._idf, self._unseen_idf)
        features = hit_features(
            sentence=float(cand.sentence_cosine[shown].max()),
            passage=float(cand.dense[i]),
            question_negated=terms.negated,
            sentence_negated=is_negated(marked),
            missing=missing,
            unseen_share=terms.unseen / max(len(terms.ids), 1),
            score_gap=float(fused[i]) - top,
            coverage=float(cand.sentence_coverage[shown[pick]]),
            missing_name=name_missing(terms, found),
        )
        support = float(self.abstention.support(np.array([features]))[0])
        return Hit(
            rank=rank,
            score=float(fused[i]),
            source=passage.source,
            title=self.index.title(passage.source),
            start=start,
            end=end,
            text=passage.text[start - passage.start : end - passage.start],
            highlight=highlight,
            passage_id=int(passage.id),
            support=support,
            features=features,
        )
