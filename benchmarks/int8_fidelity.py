"""How close the int8 copy's vectors are to the model's, with and without smoothing and the outlier split.

    python benchmarks/int8_fidelity.py [--alphas 0.5,0.7,0.75,0.8,0.85] [--texts 400] [--json]

Exports the model's fp32 copy, an int8 copy quantized as it is (no smoothing), one int8 copy
per smoothing alpha (rag.encoding.int8.smoothed) and the default int8 copy (smoothed, its
feed-forward outlier channels split off: rag.encoding.int8.split_outliers), then encodes, one
text per run as builds and questions are: SQuAD v1.1 dev paragraphs and questions of the
tuning articles (benchmarks/splits.py's), where the alpha and the split were chosen, and of
the 24 held-out articles, never used to choose them. Per copy and set: the mean of 1 - cosine
to the fp32 copy's vectors, and the lowest cosine (`--json`: one object). Ranking quality is
`rag eval`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.splits import squad_v1_tuning_titles  # noqa: E402
from rag.encoding.export import ExportUnavailable, export_onnx  # noqa: E402
from rag.encoding.int8 import SMOOTH_ALPHA  # noqa: E402
from rag.encoding.model import SentenceTransformerEncoder  # noqa: E402
from rag.encoding.onnx import OnnxEncoder  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "squad-v1.1-dev"
SQUAD2 = ROOT.parent / "shared" / "datasets" / "squad-v2.0-dev-half"


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def sets(n: int) -> dict[str, list[str]]:
    """`n` paragraphs and `n` questions drawn (seed 0) from the tuning articles and from the
    others (the 24 held-out articles of `.cache/splits/squad-v1.1-test`)."""
    titles = squad_v1_tuning_titles(DATASET, SQUAD2)
    corpus = read(DATASET / "corpus.jsonl")
    tuning = {d["_id"] for d in corpus if d["title"] in titles}
    gold = dict(line.split("\t")[:2] for line in (DATASET / "qrels" / "test.tsv").read_text("utf-8").splitlines()[1:])
    questions = read(DATASET / "queries.jsonl")
    rng = np.random.default_rng(0)
    out = {}
    for name, inside in (("tuning", True), ("held_out", False)):
        paragraphs = [d["text"] for d in corpus if (d["_id"] in tuning) == inside]
        asked = [q["text"] for q in questions if (gold.get(q["_id"]) in tuning) == inside]
        out[f"{name}_paragraphs"] = [paragraphs[i] for i in rng.choice(len(paragraphs), min(n, len(paragraphs)), replace=False)]
        out[f"{name}_questions"] = [asked[i] for i in rng.choice(len(asked), min(n, len(asked)), replace=False)]
    return out


def encode(encoder: OnnxEncoder, texts: list[str]) -> np.ndarray:
    return np.concatenate([encoder.encode_queries([t]) for t in texts])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alphas", default="0.5,0.7,0.75,0.8,0.85")
    parser.add_argument("--texts", type=int, default=400, help="paragraphs and questions per set")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = SentenceTransformerEncoder()._model
    texts = sets(args.texts)
    report: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx(model, Path(tmp) / "fp32", "fp32")
        reference = {name: encode(OnnxEncoder(Path(tmp) / "fp32", "fp32"), t) for name, t in texts.items()}
        variants: list[tuple[str, float | None, bool]] = [("int8, not smoothed", None, False)]
        variants += [(f"int8, smoothed alpha {a}", float(a), False) for a in args.alphas.split(",")]
        variants += [(f"int8, smoothed alpha {SMOOTH_ALPHA}, outliers split (the default)", SMOOTH_ALPHA, True)]
        for label, alpha, split in variants:
            folder = Path(tmp) / f"int8-{alpha}-{split}"
            try:
                export_onnx(model, folder, "int8", smooth=alpha, split=split)
            except ExportUnavailable as exc:
                report[label] = {"refused at export": str(exc)}
                continue
            encoder = OnnxEncoder(folder, label)
            row: dict[str, object] = {}
            for name, t in texts.items():
                cosine = (encode(encoder, t) * reference[name]).sum(axis=1)
                row[name] = {"mean_error": round(float((1 - cosine).mean()), 5), "min_cosine": round(float(cosine.min()), 4)}
            report[label] = row
    if args.json:
        print(json.dumps(report))
        return 0
    for label, row in report.items():
        cells = [f"{k}: {v['mean_error']:.5f} / {v['min_cosine']:.4f}" if "mean_error" in v else f"{k}: {v}"
                 for k, v in row.items()]
        print(f"{label}\n  " + "\n  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
