"""Write the held-out question sets that the README's quality figures are measured on.

    python benchmarks/splits.py [--out .cache/splits]

The fusion, passage and highlight settings were chosen on: eval/seeds/dev.jsonl; SQuAD v1.1
dev questions of the even-numbered articles among those not in the SQuAD 2.0 half; and the
answerable SQuAD 2.0 questions of its labelled articles 0-6. This writes BEIR folders holding
only questions of the other articles (same corpus, so `rag eval` reuses the cached index):

  squad-v1.1-test   SQuAD v1.1 dev, every article not used for tuning
  squad2-test       SQuAD 2.0 half, labelled articles 7-9, answerable and unanswerable
  squad2-tune       SQuAD 2.0 half, labelled articles 0-6 (to calibrate on before judging
                    squad2-test: `rag eval .cache/splits/squad2-tune --calibrate --answer-rate 0.9`)

eval/seeds/test.jsonl is the seed articles' own held-out set.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
SQUAD2_TUNING_ARTICLES = 7  # labelled articles 0..6 of the SQuAD 2.0 half were used for tuning


def article(doc_id: str) -> int:
    return int(doc_id.split("_")[0])


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def qrels(folder: Path) -> dict[str, str]:
    lines = (folder / "qrels" / "test.tsv").read_text("utf-8").splitlines()[1:]
    return {q: d for q, d, _ in (line.split("\t") for line in lines)}


def squad2_article_of(folder: Path) -> dict[str, int]:
    """The article of every SQuAD 2.0 question: its gold paragraph's, else (unanswerable) that
    of the answerable questions around it (queries.jsonl keeps SQuAD's article order)."""
    gold = qrels(folder)
    out: dict[str, int] = {}
    last = 0
    for q in read(folder / "queries.jsonl"):
        last = article(gold[q["_id"]]) if q["_id"] in gold else last
        out[q["_id"]] = last
    return out


def write(folder: Path, out: Path, keep: set[str]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    shutil.copyfile(folder / "corpus.jsonl", out / "corpus.jsonl")
    queries = [q for q in read(folder / "queries.jsonl") if q["_id"] in keep]
    (out / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries), "utf-8")
    answers = [a for a in read(folder / "answers.jsonl") if a["_id"] in keep]
    (out / "answers.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers), "utf-8")
    lines = (folder / "qrels" / "test.tsv").read_text("utf-8").splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line.split("\t")[0] in keep]
    (out / "qrels" / "test.tsv").write_text("\n".join(kept) + "\n", "utf-8")
    return len(queries)


def squad_v1_tuning_titles(v1: Path, v2: Path) -> set[str]:
    """The SQuAD v1.1 dev articles (titles) settings were chosen on: the even-numbered ones not
    in the SQuAD 2.0 half, and the SQuAD 2.0 half's tuning articles."""
    titles_v2 = {d["title"] for d in read(v2 / "corpus.jsonl")}
    order_v2 = list(dict.fromkeys(d["title"] for d in read(v2 / "corpus.jsonl")))
    tuned_v2 = set(order_v2[:SQUAD2_TUNING_ARTICLES])
    title_v1 = {d["_id"]: d["title"] for d in read(v1 / "corpus.jsonl")}
    return {t for d, t in title_v1.items() if t not in titles_v2 and article(d) % 2 == 0} | tuned_v2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "splits")
    args = parser.parse_args()
    v1, v2 = DATASETS / "squad-v1.1-dev", DATASETS / "squad-v2.0-dev-half"
    title_v1 = {d["_id"]: d["title"] for d in read(v1 / "corpus.jsonl")}
    tuning_v1 = squad_v1_tuning_titles(v1, v2)
    gold_v1 = qrels(v1)
    keep_v1 = {q for q, d in gold_v1.items() if title_v1[d] not in tuning_v1}
    n1 = write(v1, args.out / "squad-v1.1-test", keep_v1)
    of = squad2_article_of(v2)
    labelled = {a for a in of.values()}
    keep_v2 = {q for q, a in of.items() if a >= SQUAD2_TUNING_ARTICLES}
    n2 = write(v2, args.out / "squad2-test", keep_v2)
    n3 = write(v2, args.out / "squad2-tune", set(of) - keep_v2)
    print(f"{args.out / 'squad-v1.1-test'}: {n1} questions of {len({title_v1[gold_v1[q]] for q in keep_v1})} articles")
    print(f"{args.out / 'squad2-test'}: {n2} questions of labelled articles {sorted(a for a in labelled if a >= SQUAD2_TUNING_ARTICLES)}")
    print(f"{args.out / 'squad2-tune'}: {n3} questions of labelled articles {sorted(a for a in labelled if a < SQUAD2_TUNING_ARTICLES)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
