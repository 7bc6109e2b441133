"""The "not found in these passages" line, before and after its filter, on labelled seed questions.

    .venv/bin/python benchmarks/missing_line.py [--set dev|test|both] [--json]

Labels: every on-topic unanswerable seed question lists in `needs` the words an answer would
need that no article has (empty when none is a single word). For each set, on an index of
seeds/ at the default k of 5:
  * named: unanswerable questions with labels whose line names at least one of them;
  * hidden: labelled words the raw line listed and the filtered line does not (a truly missing
    word the filter hides);
  * noise: on answerable questions (the sources answer them, so nothing they need is missing),
    the questions whose line is not empty and the words it lists; and frame words listed
    anywhere (FRAME_WORDS).
"Before" is the raw line (every question content word no shown passage holds, as the code did
before the filter), computed by the same run with the filter replaced by the identity. The
filter's word lists were written looking at dev only; test is the held-out check.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rag.answer.searcher as searcher_module  # noqa: E402
from rag.answer.missing import FRAME_WORDS  # noqa: E402
from rag.api import open as open_index  # noqa: E402
from rag.index import build_index  # noqa: E402


def figures(rows: list[dict], answers: list[tuple[str, ...]]) -> dict[str, object]:
    named = sum(bool({w.lower() for w in a} & {w.lower() for w in r["needs"]}) for r, a in zip(rows, answers) if r.get("needs"))
    labelled = sum(bool(r.get("needs")) for r in rows)
    answerable = [(r, a) for r, a in zip(rows, answers) if r["answerable"]]
    return {
        "unanswerable_with_labels": labelled,
        "named": named,
        "answerable": len(answerable),
        "answerable_with_a_line": sum(bool(a) for _, a in answerable),
        "answerable_words_listed": sum(len(a) for _, a in answerable),
        "frame_words_listed": sum(w.lower() in FRAME_WORDS for a in answers for w in a),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=("dev", "test", "both"), default="both")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from rag.encoding import SentenceTransformerEncoder

    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        build_index(ROOT / "seeds", Path(tmp) / "index", SentenceTransformerEncoder())
        index = open_index(Path(tmp) / "index")
        for name in (("dev", "test") if args.set == "both" else (args.set,)):
            rows = [json.loads(line) for line in (ROOT / "eval" / "seeds" / f"{name}.jsonl").read_text("utf-8").splitlines() if line.strip()]
            questions = [r["question"] for r in rows]
            after = [a.missing for a in index.ask_many(questions, 5)]
            real = searcher_module.shown_missing
            searcher_module.shown_missing = lambda missing, *rest: tuple(missing)  # the raw line
            try:
                before = [a.missing for a in index.ask_many(questions, 5)]
            finally:
                searcher_module.shown_missing = real
            hidden = [(r["id"], w) for r, b, a in zip(rows, before, after) for w in r.get("needs", [])
                      if w.lower() in {x.lower() for x in b} and w.lower() not in {x.lower() for x in a}]
            removed = sorted({w.lower() for b, a in zip(before, after) for w in set(b) - set(a)})
            report[name] = {"before": figures(rows, before), "after": figures(rows, after),
                            "truly_missing_hidden": hidden, "words_the_filter_removed": removed}
    print(json.dumps(report, indent=None if args.json else 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
