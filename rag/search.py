"""Stage 5, index/ -> hits: hybrid retrieval, fusion, de-duplication, highlight, abstention.

The maths are pure numpy functions over candidate rows; `Searcher` only wires them to an
opened index and an encoder. Search never writes text: every hit is a span of a source.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .embedding import DEFAULT_MODEL, Encoder
from .errors import RagError
from .store import Index
from .types import Answer, Hit

FUSIONS = ("convex", "rrf")
MODES = ("hybrid", "dense", "bm25")
MAX_QUESTION_CHARS = 1000
MAX_K = 100
BATCH = 64  # questions encoded per model call in batch work
_TERMS_CACHE_SIZE = 1_000_000  # sentences whose term sets are kept between queries
# Support threshold for abstaining, fitted with `calibrate_threshold` on eval/seed_questions.jsonl
# (README, "Abstention"). Other models start from the generic value until one is calibrated.
DEFAULT_THRESHOLDS = {DEFAULT_MODEL: 0.36}
GENERIC_THRESHOLD = 0.36


@dataclass(frozen=True)
class SearchConfig:
    """How a question is answered; checked when built so errors name the bad parameter."""

    mode: str = "hybrid"
    fusion: str = "convex"
    alpha: float = 0.4  # weight of the dense score in convex fusion (README: "Fusion")
    rrf_k: int = 60
    candidates: int = 100  # taken from each retriever before fusion
    highlight_lexical: float = 0.3  # weight of question-word overlap when picking the sentence

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")
        if self.rrf_k < 1:
            raise ValueError(f"rrf_k must be >= 1, got {self.rrf_k}")
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")
        if self.highlight_lexical < 0:
            raise ValueError(f"highlight_lexical must be >= 0, got {self.highlight_lexical}")


def check_question(question: object) -> str:
    """The question stripped, or a one-line error for an empty or oversized one."""
    if not isinstance(question, str) or not question.strip():
        raise RagError('the question is empty; ask something, e.g. rag ask "Who claimed the attack?"')
    question = question.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise RagError(
            f"the question is {len(question)} characters long; keep it under {MAX_QUESTION_CHARS}"
        )
    return question


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise RagError(f"-k must be a whole number from 1 to {MAX_K}, got {k!r}")
    return k


def top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` largest scores, best first (ties broken by index)."""
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if n < len(scores):
        kth = -np.partition(-scores, n - 1)[n - 1]  # the n-th largest score
        above = np.flatnonzero(scores > kth)
        part = np.concatenate([above, np.flatnonzero(scores == kth)[: n - len(above)]])
    else:
        part = np.arange(len(scores))
    return part[np.lexsort((part, -scores[part]))]


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score, best first."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    out = np.empty(len(scores), dtype=np.int64)
    out[order] = np.arange(1, len(scores) + 1)
    return out


def rrf(dense: np.ndarray, lexical: np.ndarray, k: int = 60) -> np.ndarray:
    """Reciprocal rank fusion of two score lists over the same candidates."""
    return 1.0 / (k + ranks(dense)) + 1.0 / (k + ranks(lexical))


def convex(dense: np.ndarray, lexical: np.ndarray, alpha: float) -> np.ndarray:
    """Weighted sum of the cosine and the BM25 score scaled by its best possible value."""
    return alpha * dense + (1.0 - alpha) * lexical


def fuse(dense: np.ndarray, lexical: np.ndarray, config: SearchConfig) -> np.ndarray:
    if config.mode == "dense":
        return dense.astype(np.float64)
    if config.mode == "bm25":
        return lexical.astype(np.float64)
    if config.fusion == "rrf":
        return rrf(dense, lexical, config.rrf_k)
    return convex(dense.astype(np.float64), lexical.astype(np.float64), config.alpha)


def select_spans(
    ordered_rows: Iterable[int],
    sources: Sequence[str],
    sentences: Sequence[Sequence[tuple[int, int]]],
    k: int,
) -> list[tuple[int, int, int]]:
    """(row, first, last) sentence ranges to show, so that no sentence is shown twice.

    Passages overlap by design; a passage whose sentences were all shown by a better one is
    skipped, and one that shares some keeps its longest run of unseen sentences.
    """
    shown: dict[str, set[tuple[int, int]]] = {}
    out: list[tuple[int, int, int]] = []
    for row in ordered_rows:
        if len(out) >= k:
            break
        seen = shown.setdefault(sources[row], set())
        sents = sentences[row]
        best: tuple[int, int] | None = None
        run_start: int | None = None
        for i, span in enumerate(list(sents) + [None]):  # type: ignore[list-item]
            fresh = span is not None and span not in seen
            if fresh and run_start is None:
                run_start = i
            if not fresh and run_start is not None:
                if best is None or i - run_start > best[1] - best[0]:
                    best = (run_start, i)
                run_start = None
        if best is None:
            continue
        out.append((row, best[0], best[1]))
        seen.update(sents[best[0] : best[1]])
    return out


def support(best_passage: float, best_sentence: float) -> float:
    """How well the best evidence matches the question: the mean of the best passage cosine
    and the best sentence cosine. Abstention compares this with the index's threshold."""
    return (best_passage + best_sentence) / 2.0


def calibrate_threshold(answerable: Sequence[float], unanswerable: Sequence[float]) -> float:
    """The support threshold with the fewest errors on a labelled set (answerable questions
    must reach it, unanswerable ones must not), placed mid-way in the widest gap among ties."""
    values = np.sort(np.unique(np.concatenate([np.asarray(answerable), np.asarray(unanswerable)])))
    if not len(values):
        raise ValueError("calibration needs at least one question")
    cuts = np.concatenate([[values[0] - 0.01], (values[:-1] + values[1:]) / 2, [values[-1] + 0.01]])
    pos, neg = np.asarray(answerable), np.asarray(unanswerable)
    errors = np.array([(pos < c).sum() / max(len(pos), 1) + (neg >= c).sum() / max(len(neg), 1) for c in cuts])
    best = np.flatnonzero(errors == errors.min())
    # among equally good cuts (a run of them spans one gap or several), take the widest gap
    lower = np.concatenate([[values[0] - 0.02], values])
    upper = np.concatenate([values, [values[-1] + 0.02]])
    widths = upper[best] - lower[best]
    return float(cuts[best[int(np.argmax(widths))]])


def idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """BM25's inverse document frequency."""
    return np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def pick_sentence(semantic: np.ndarray, overlap: np.ndarray, lexical_weight: float) -> int:
    """Index of the best-supporting sentence: cosine plus weighted question-term overlap."""
    return int(np.argmax(semantic + lexical_weight * overlap))


class Searcher:
    """Answers questions from one opened index with one encoder."""

    def __init__(self, index: Index, encoder: Encoder, config: SearchConfig | None = None) -> None:
        if encoder.name != index.manifest.model or encoder.dimension != index.manifest.dimension:
            raise RagError(
                f"the index was built with model '{index.manifest.model}' "
                f"(dimension {index.manifest.dimension}) but the model in use is '{encoder.name}' "
                f"(dimension {encoder.dimension}); rebuild with: rag index --full --model {encoder.name}"
            )
        self.index = index
        self.encoder = encoder
        self.config = config or SearchConfig()
        self.threshold = index.manifest.abstain_threshold
        import faiss

        # One query at a time: OpenMP's start-up costs more than it saves (0.4 vs 1.8 ms on
        # 5.5k passages, 2 cores); batch callers may raise it again.
        faiss.omp_set_num_threads(1)
        indptr = np.asarray(index.bm25.scores["indptr"])
        self._idf = idf(np.diff(indptr).astype(np.float64), len(index.passages))
        self._sources = [p.source for p in index.passages]
        self._sentences = [p.sentences for p in index.passages]
        self._vocab: dict[str, int] = index.bm25_tokenizer.get_vocab_dict()
        self._terms_cache: dict[int, frozenset[int]] = {}
        self._stopwords = frozenset(index.bm25_tokenizer.stopwords)
        self._rarest = float(index.term_max.max()) if len(index.term_max) else 1.0
        rows: dict[str, list[int]] = {}
        for row, source in enumerate(self._sources):
            rows.setdefault(source, []).append(row)
        self._rows_of_source = {s: np.array(r, dtype=np.int64) for s, r in rows.items()}
        self._sentence_start = np.array([p.sentence_row for p in index.passages], dtype=np.int64)
        self._sentence_count = np.array([len(p.sentences) for p in index.passages], dtype=np.int64)

    def ask(self, question: str, k: int = 5, sources: Collection[str] | None = None) -> Answer:
        return self.ask_many([question], k, sources)[0]

    def ask_many(
        self, questions: Sequence[str], k: int = 5, sources: Collection[str] | None = None
    ) -> list[Answer]:
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

    def _allowed_rows(self, sources: Collection[str]) -> np.ndarray:
        unknown = set(sources) - set(self._rows_of_source)
        if unknown:
            raise RagError(f"unknown source {sorted(unknown)[0]!r}; pick one of the indexed files")
        return np.sort(np.concatenate([self._rows_of_source[s] for s in sources]))

    def query_terms(self, question: str) -> tuple[np.ndarray, int]:
        """BM25 term ids of the question's words found in the index, and how many of its
        (distinct, stemmed, non-stopword) words the index has never seen."""
        tokenizer = self.index.bm25_tokenizer
        words = {w for w in tokenizer.splitter(question.lower()) if w not in self._stopwords}
        stems = {tokenizer.stemmer(w) for w in words}
        known = [self._vocab[s] for s in stems if s in self._vocab]
        return np.unique(np.asarray(known, dtype=np.int64)), len(stems) - len(known)

    def answer(
        self, question: str, qvec: np.ndarray, k: int, sources: Collection[str] | None = None
    ) -> Answer:
        """Rank, trim, highlight and judge one encoded question."""
        index, cfg = self.index, self.config
        n = len(index.passages)
        if n == 0:
            return Answer(question, False, ())
        qvec = np.ascontiguousarray(qvec.reshape(1, -1), dtype=np.float32)
        pool = min(n, max(cfg.candidates, 4 * k))
        terms, unseen = self.query_terms(question)
        bm25_all = (
            index.bm25.get_scores_from_ids(terms.tolist()) if len(terms) else np.zeros(n, np.float32)
        )
        # The best score any passage could get; a word no passage has counts as the rarest
        # word would, so one matching word among many unknown ones is not a perfect match.
        bound = float(index.term_max[terms].sum()) + unseen * self._rarest
        if sources:  # every passage of the chosen sources is a candidate
            candidates = self._allowed_rows(sources)
        else:
            _, dense_ids = index.dense.search(qvec, pool)
            candidates = np.union1d(index.rows(dense_ids[0][dense_ids[0] >= 0]), top_rows(bm25_all, pool))
        dense = np.asarray(index.vectors[candidates] @ qvec[0], dtype=np.float64)
        lexical = bm25_all[candidates] / bound if bound > 0 else np.zeros(len(candidates))
        fused = fuse(dense, lexical, cfg)
        order = np.lexsort((candidates, -fused))
        evidence = support(float(dense.max()), self._best_sentence(candidates, qvec[0]))
        answered = bool(evidence >= self.threshold)
        chosen = select_spans(
            (int(candidates[i]) for i in order), self._sources, self._sentences, k
        )
        position = {int(candidates[i]): i for i in order}
        hits = []
        for rank, (row, first, last) in enumerate(chosen, start=1):
            i = position[row]
            hits.append(self._hit(rank, row, first, last, fused[i], dense[i], lexical[i], qvec[0], terms))
        return Answer(question, answered, tuple(hits), support=evidence)

    def _best_sentence(self, rows: np.ndarray, qvec: np.ndarray) -> float:
        """Largest cosine between the question and any sentence of the candidate passages."""
        counts = self._sentence_count[rows]
        firsts = np.repeat(self._sentence_start[rows] - np.cumsum(counts) + counts, counts)
        sentence_rows = firsts + np.arange(int(counts.sum()))
        return float((self.index.sentence_vectors[sentence_rows] @ qvec).max())

    def _hit(
        self,
        rank: int,
        row: int,
        first: int,
        last: int,
        score: float,
        dense: float,
        lexical: float,
        qvec: np.ndarray,
        terms: np.ndarray,
    ) -> Hit:
        passage = self.index.passages[row]
        spans = passage.sentences[first:last]
        start, end = spans[0][0], spans[-1][1]
        text = passage.text[start - passage.start : end - passage.start]
        rows = slice(passage.sentence_row + first, passage.sentence_row + last)
        semantic = self.index.sentence_vectors[rows] @ qvec
        overlap = self._term_overlap(
            range(rows.start, rows.stop),
            [passage.text[a - passage.start : b - passage.start] for a, b in spans],
            terms,
        )
        best = spans[pick_sentence(semantic, overlap, self.config.highlight_lexical)]
        return Hit(
            rank=rank,
            score=float(score),
            source=passage.source,
            title=self.index.title(passage.source),
            start=start,
            end=end,
            text=text,
            highlight=best,
            passage_id=int(passage.id),
            dense=float(dense),
            lexical=float(lexical),
        )

    def _sentence_terms(self, row: int, text: str) -> frozenset[int]:
        """BM25 term ids of one stored sentence, computed once per sentence and kept."""
        cached = self._terms_cache.get(row)
        if cached is None:
            tokenizer = self.index.bm25_tokenizer
            stems = {tokenizer.stemmer(w) for w in tokenizer.splitter(text.lower())}
            cached = frozenset(self._vocab[s] for s in stems if s in self._vocab)
            if len(self._terms_cache) < _TERMS_CACHE_SIZE:
                self._terms_cache[row] = cached
        return cached

    def _term_overlap(self, rows: range, sentences: list[str], terms: np.ndarray) -> np.ndarray:
        """Share of the question's idf weight that each sentence contains."""
        if not len(terms):
            return np.zeros(len(sentences))
        weights = dict(zip(terms.tolist(), self._idf[terms].tolist()))
        total = sum(weights.values())
        return np.array(
            [
                sum(w for t, w in weights.items() if t in self._sentence_terms(row, sentence)) / total
                for row, sentence in zip(rows, sentences)
            ]
        )
