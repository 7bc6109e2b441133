"""Side-by-side speed figures for the retrieval core, on the seeds.

    python benchmarks/core.py [--rounds 5]

Prints, measured in one process and interleaved so that machine noise hits both sides alike:
  * build: `build_index` (read, chunk, embed, write FAISS + BM25) against the floor, a bare
    `SentenceTransformer.encode` of the same passage texts;
  * query: a warm `Searcher.ask` against the model alone encoding the same question.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sources", type=Path, default=ROOT / "seeds")
    parser.add_argument("--questions", type=Path, default=ROOT / "eval" / "seed_questions.jsonl")
    args = parser.parse_args()

    from rag.build import build_index
    from rag.chunking import chunk_document
    from rag.embedding import SentenceTransformerEncoder
    from rag.evaluation import load_questions
    from rag.search import Searcher
    from rag.sources import load_documents
    from rag.store import open_index
    from rag.types import ChunkingConfig

    encoder = SentenceTransformerEncoder()
    model = encoder._model
    docs = load_documents(args.sources)
    texts = [c.embed_text for d in docs for c in chunk_document(d, encoder.count_tokens, ChunkingConfig())]
    model.encode(texts[:8])  # warm up kernels and caches for both sides

    floor, build = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            t = time.perf_counter()
            model.encode(texts, batch_size=encoder.batch_size, normalize_embeddings=True)
            floor.append(time.perf_counter() - t)
            t = time.perf_counter()
            build_index(args.sources, Path(tmp) / f"i{r}", encoder)
            build.append(time.perf_counter() - t)
        searcher = Searcher(open_index(Path(tmp) / "i0"), encoder)
        questions = [q.question for q in load_questions(args.questions)]
        for q in questions[:5]:
            searcher.ask(q)
        enc_ms, ask_ms = [], []
        for _ in range(args.rounds):
            for q in questions:
                t = time.perf_counter()
                model.encode([q], normalize_embeddings=True)
                enc_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                searcher.ask(q, k=5)
                ask_ms.append((time.perf_counter() - t) * 1000)

    def pct(values: list[float], p: float) -> float:
        return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else values[0]

    fb, bb = statistics.median(floor), statistics.median(build)
    print(f"passages: {len(texts)}  questions: {len(questions)} x {args.rounds} rounds")
    print(f"{'':28s}{'p50':>10s}{'p95':>10s}")
    print(f"{'encode question (floor) ms':28s}{pct(enc_ms, 50):10.2f}{pct(enc_ms, 95):10.2f}")
    print(f"{'rag ask, warm ms':28s}{pct(ask_ms, 50):10.2f}{pct(ask_ms, 95):10.2f}")
    print(f"query / encode ratio (p50): {pct(ask_ms, 50) / pct(enc_ms, 50):.2f}")
    print(f"build median {bb:.2f} s, encode-only floor median {fb:.2f} s, ratio {bb / fb:.2f}")


if __name__ == "__main__":
    main()
