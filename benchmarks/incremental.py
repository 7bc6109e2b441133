"""Incremental rebuild on SQuAD-dev written as 48 article files, measured as a user runs it.

    python benchmarks/incremental.py [--dataset ../shared/datasets/squad-v1.1-dev]

1. 47 articles are written as files (one held out) and `rag index` builds them (full);
2. one article is edited, one deleted, the held-out one added, and `rag index` runs again;
   both timings include process start. Each change is then checked through `rag ask`;
3. a forced full rebuild is killed with SIGKILL part way; `rag ask` must still answer and
   the next `rag index` must succeed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rag(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if result.returncode != 0:
        raise SystemExit(f"rag {' '.join(args)} failed:\n{result.stderr}")
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=ROOT.parent / "shared" / "datasets" / "squad-v1.1-dev")
    parser.add_argument("--kill-after", type=float, default=30.0, help="seconds into the forced rebuild to SIGKILL it")
    args = parser.parse_args()

    articles: dict[str, list[str]] = defaultdict(list)
    for line in open(args.dataset / "corpus.jsonl", encoding="utf-8"):
        doc = json.loads(line)
        articles[doc["title"]].append(doc["text"])
    names = list(articles)
    held_out, edited, deleted = names[-1], names[0], names[1]

    def file(title: str) -> str:
        return title.replace(" ", "_").replace("/", "_") + ".txt"

    def body(title: str) -> str:
        return f"= {title} =\n\n" + "\n\n".join(articles[title]) + "\n"

    with tempfile.TemporaryDirectory() as tmp:
        sources, index = Path(tmp) / "articles", Path(tmp) / "index"
        sources.mkdir()
        for title in names[:-1]:
            (sources / file(title)).write_text(body(title), "utf-8")
        full, out = rag("index", "--sources", str(sources), "--index", str(index), "--quiet")
        print(f"full build of {len(names) - 1} articles: {full:.1f} s  | {out.stdout.strip()}")

        marker = "The zebra-striped referee was later named the game's honorary captain."
        paragraphs = list(articles[edited])
        paragraphs[3] = paragraphs[3] + " " + marker
        (sources / file(edited)).write_text(f"= {edited} =\n\n" + "\n\n".join(paragraphs) + "\n", "utf-8")
        (sources / file(deleted)).unlink()
        (sources / file(held_out)).write_text(body(held_out), "utf-8")
        incremental, out = rag("index", "--sources", str(sources), "--index", str(index), "--quiet")
        print(f"edit 1 + delete 1 + add 1: {incremental:.1f} s  | {out.stdout.strip()}")
        print(f"incremental / full = {incremental / full:.3f} (target <= 0.25)")

        def ask(question: str) -> dict:
            return json.loads(rag("ask", question, "--index", str(index), "-k", "5", "--json")[1].stdout)

        top = ask("Who was named honorary captain after being called the zebra-striped referee?")["hits"][0]
        print(f"edit shows: {marker in top['text']} (top hit {top['source']})")
        first_new = articles[held_out][0].split(". ")[0]
        new = ask(first_new)["hits"]
        print(f"added article shows: {new[0]['source'] == file(held_out)} (top hit {new[0]['source']})")
        gone = ask(articles[deleted][0].split(". ")[0])["hits"]
        print(f"deleted article never shows: {all(h['source'] != file(deleted) for h in gone)}")

        proc = subprocess.Popen(
            [sys.executable, "-m", "rag", "index", "--sources", str(sources), "--index", str(index), "--full", "--quiet"],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(args.kill_after)
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        answer = ask("Which team won Super Bowl 50?")
        print(f"forced full rebuild SIGKILLed after {args.kill_after:.0f} s (still running: {killed}); "
              f"index still answers: {bool(answer['hits'])} (top hit {answer['hits'][0]['source']})")
        again, out = rag("index", "--sources", str(sources), "--index", str(index), "--quiet")
        print(f"next rag index: {again:.1f} s, ok | {out.stdout.strip()}")
        print(f"leftover temporary folders: {len(list(index.glob('.tmp-*')))}")


if __name__ == "__main__":
    main()
