"""Fit the shipped abstention model and report it out of sample.

    python benchmarks/fit_abstention.py [--write] [--precision int8|fp32] [--squad2 DIR] [--squad2-from N] [--json]

Features come from the model copy that encodes questions and passages at `--precision` (by
default the default copy, int8), each index's own, exactly as `rag ask` computes them.

Data (nothing from eval/seeds/test.jsonl, which stays unseen):
  * SQuAD 2.0 dev, labelled half (../shared/datasets/squad-v2.0-dev-half): 10 articles, 3,708
    questions, 1,987 of them on-topic and unanswerable;
  * eval/seeds/dev.jsonl on an index of seeds/: answerable, on-topic unanswerable, off-topic.

Weights: L2 logistic regression per shown hit ("does this passage hold the answer?"), each
seed question counting SEED_WEIGHT times (the seed set is 20 times smaller).
Threshold (the product's default): the fewest errors on the seed dev questions that are
answerable or off-topic, a wrongly refused answerable question counting twice (it is the
costlier error); on-topic unanswerable questions are left to the "missing words" line and to
a corpus's own calibration (`rag eval --calibrate`), since at their level of support too many
real questions would be refused. Every figure printed is out of sample: SQuAD 2.0 leaves each
article out in turn (weights and threshold refitted without it); the seed questions leave each
article out in turn the same way.
The strict operating point (`rag ask --abstain strict`): the threshold that answers
STRICT_ANSWER_RATE of the answerable SQuAD 2.0 questions, never below the default one; its
figures are out of sample the same way (refitted without the article they are measured on).
`--write` stores the model in rag/models/abstention-all-MiniLM-L6-v2.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from rag.encoding.choice import question_encoder  # noqa: E402
from rag.encoding.model import SentenceTransformerEncoder  # noqa: E402
from rag.encoding.recipes import DEFAULT_PRECISION, PRECISIONS  # noqa: E402
from rag.evaluation.beir import beir_group, beir_index  # noqa: E402
from rag.evaluation.calibration import (
    MODEL_FEATURES,
    Labelled,
    auroc,
    fit_logistic,
    hit_rows,
    question_support,
    rates,
    threshold_for_answer_rate,
    threshold_min_error,
)
from rag.evaluation.metrics import answer_passages, containment_judgements, document_run
from rag.evaluation.questions import load_beir, load_questions
from rag.evaluation.runner import EvalOptions, contains, evaluate, labelled  # noqa: E402
from rag.index.reading import open_index  # noqa: E402
from rag.types import FEATURES, AbstentionModel  # noqa: E402

STRICT_ANSWER_RATE = 0.92  # the strict point answers this share of answerable questions where it is fitted
REFUSAL_COST = 2.0  # a wrongly refused answerable question, against 1 for an answered off-topic one
SEED_WEIGHT = 5.0  # of 1 and 5, the better SQuAD 2.0 AUROC out of sample (0.708 and 0.713)
OUT = ROOT / "rag" / "models" / "abstention-all-MiniLM-L6-v2.json"


def squad2(folder: Path, builder: SentenceTransformerEncoder, precision: str, first_article: int = 0) -> list[Labelled]:
    """Labelled SQuAD 2.0 questions of articles `first_article` and later, grouped by article."""
    from splits import squad2_article_of

    data = load_beir(folder)
    of = squad2_article_of(folder)
    data = replace(data, questions=[replace(q, group=f"squad2-{of[q.id]}") for q in data.questions if of[q.id] >= first_article])
    index_dir, encoder = beir_index(folder, data, ROOT / ".cache" / "eval", lambda m: print(m, file=sys.stderr), builder.name,
                                    precision, builder)
    index = open_index(index_dir)
    options = EvalOptions(k=10, modes=("hybrid",))
    _, _, answers, correct = evaluate(index, encoder, data.questions, options,
                                      lambda qs, ans: (data.qrels, document_run(ans, qs, 10)), 40)
    return labelled(data.questions, answers, beir_group(data, index), lambda q, h: h.source in data.qrels.get(q.id, {}))


def seeds(builder: SentenceTransformerEncoder, tmp: Path, precision: str) -> tuple[list[Labelled], list[str]]:
    from rag.index.build import build_index

    build_index(ROOT / "seeds", tmp / "index", builder, precision=precision)
    index = open_index(tmp / "index")
    encoder = question_encoder(index.path, index.manifest.model, builder)  # as `rag ask` encodes questions
    questions = load_questions(ROOT / "eval" / "seeds" / "dev.jsonl")
    relevant = answer_passages(questions, [(p.id, p.text) for p in index.passages])
    options = EvalOptions(k=5, modes=("hybrid",))
    _, _, answers, correct = evaluate(index, encoder, questions, options,
                                      lambda qs, ans: containment_judgements(qs, ans, relevant), 5)

    def group(q, a):  # noqa: ANN001, ANN202
        return q.sources[0] if q.sources else (a.hits[0].source if a.hits else "")

    kinds = [json.loads(line).get("kind", "") for line in (ROOT / "eval" / "seeds" / "dev.jsonl").read_text().splitlines() if line.strip()]
    return labelled(questions, answers, group, contains), kinds


def fit(squad: list[Labelled], seed: list[Labelled], seed_kinds: list[str], features: tuple[str, ...] = MODEL_FEATURES) -> AbstentionModel:
    """Per-hit weights on both sets, the default threshold from the seed rule, and the strict one
    answering STRICT_ANSWER_RATE of the answerable SQuAD 2.0 questions (never below the default)."""
    X, y, w = hit_rows(squad + seed, features, [1.0] * len(squad) + [SEED_WEIGHT] * len(seed))
    weights, bias = fit_logistic(X, y, w)
    model = AbstentionModel(tuple(float(v) for v in weights), bias, 0.5, "", features)
    support = question_support(model, seed)
    answerable = np.array([q.answerable for q in seed])
    off_topic = np.array([k == "off_topic" for k in seed_kinds])
    model = model.with_threshold(threshold_min_error(support[answerable], support[off_topic], REFUSAL_COST, 1.0))
    squad_support = question_support(model, squad)
    strict = threshold_for_answer_rate(squad_support[np.array([q.answerable for q in squad])], STRICT_ANSWER_RATE)
    return replace(model, strict_threshold=max(strict, model.threshold))


def leave_one_out(held: list[Labelled], other: list[Labelled], kinds: list[str],
                  squad_side: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out support, the default threshold and the strict one (the model refitted without
    the held-out article, as the shipped one is fitted) for every question of `held`; `kinds`
    are the seed questions' kinds."""
    groups = np.array([q.group for q in held])
    support = np.zeros(len(held))
    default_t = np.zeros(len(held))
    strict_t = np.zeros(len(held))
    for g in np.unique(groups):
        train = [q for q, gg in zip(held, groups) if gg != g]
        if squad_side:
            model = fit(train, other, kinds)
        else:
            model = fit(other, train, [k for k, gg in zip(kinds, groups) if gg != g])
        mask = groups == g
        support[mask] = question_support(model, [q for q, m in zip(held, mask) if m])
        default_t[mask] = model.threshold
        strict_t[mask] = model.threshold_for("strict")
    return support, default_t, strict_t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad2", type=Path, default=ROOT.parent / "shared" / "datasets" / "squad-v2.0-dev-half")
    parser.add_argument("--write", action="store_true", help=f"store the fitted model in {OUT.relative_to(ROOT)}")
    parser.add_argument("--squad2-from", type=int, default=0,
                        help="use SQuAD 2.0 labelled articles from this one on (default: 0, all 10)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                        help="the model copy whose features are fitted (default: the default copy, %(default)s)")
    args = parser.parse_args()
    builder = SentenceTransformerEncoder()
    first = args.squad2_from
    squad = squad2(args.squad2, builder, args.precision, first)
    with tempfile.TemporaryDirectory() as tmp:
        seed, kinds = seeds(builder, Path(tmp), args.precision)
    report: dict[str, object] = {"squad2_articles": f"{first}-9"}

    # SQuAD 2.0, each article left out (weights + default threshold refitted without it)
    support, default_t, strict_t = leave_one_out(squad, seed, kinds, squad_side=True)
    y = np.array([q.answerable for q in squad])
    report["squad2_out_of_sample"] = {
        "auroc": round(auroc(support, y), 4),
        "at_default_threshold": rates(support, y, default_t).to_json(),
        "at_strict_threshold_fitted_on_other_articles": rates(support, y, strict_t).to_json(),
        "single_feature_auroc_top_hit": {f: round(auroc([q.features[0][i] if len(q.features) else 0 for q in squad], y), 4)
                                        for i, f in enumerate(FEATURES)},
    }
    # seeds dev, each article left out
    support_s, default_s, strict_s = leave_one_out(seed, squad, kinds, squad_side=False)
    ys = np.array([q.answerable for q in seed])
    by_kind = {}
    for kind in sorted(set(kinds)):
        mask = np.array([k == kind for k in kinds])
        answered = support_s[mask] >= default_s[mask]
        by_kind[kind] = {"questions": int(mask.sum()), "answered": int(answered.sum()),
                         "answered_strict": int((support_s[mask] >= strict_s[mask]).sum())}
    report["seeds_dev_out_of_sample"] = {"auroc": round(auroc(support_s, ys), 4),
                                         "at_default_threshold": rates(support_s, ys, default_s).to_json(), "by_kind": by_kind}

    final = fit(squad, seed, kinds)
    final = AbstentionModel(
        final.weights, final.bias, final.threshold, features=final.features, strict_threshold=final.strict_threshold,
        fitted_on=
        f"benchmarks/fit_abstention.py --precision {args.precision}: features from the model's {args.precision} copy; "
        f"weights on SQuAD 2.0 dev (labelled half: {len(squad)} questions, articles {first}-9) "
        f"and eval/seeds/dev.jsonl ({len(seed)} questions, each counted {SEED_WEIGHT:g} times); threshold: fewest "
        f"errors on the answerable and off-topic seed dev questions, a refused answerable one counting {REFUSAL_COST:g}"
        + f"; strict threshold: answers {STRICT_ANSWER_RATE:.0%} of the answerable SQuAD 2.0 ones",
    )
    report["model"] = final.to_json()
    if args.write:
        OUT.write_text(json.dumps(final.to_json(), indent=2) + "\n", "utf-8")
        print(f"wrote {OUT}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
