"""Kill Milvus builds at whole seconds and ask after each kill: does the store still answer?

    .venv/bin/python benchmarks/milvus_kill.py [--sources seeds] [--seconds 1-10] [--work DIR]

Builds a Milvus Lite store from the sources, then for each second S in the range and for each
kind of build (`rag index --full`, and an update after editing one file) starts the build,
sends it SIGKILL S seconds in, and runs `rag ask --json` on the store. A line per kill says
whether the build had finished, whether the answer came, whether every citation is an exact
span of the file version the store holds, and which version that is (old or new). A final
`rag index` must then succeed and leave one family of collections. Exits 1 on any failure.
What it leaves out: kills inside a step shorter than a second (tests/test_milvus_rebuild.py
stops builds at every checkpoint instead), and a Milvus server (Milvus Lite only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "How many people were killed in the attacks?"
MARK = "\n\nEditor's note, revision {n}: this report was updated.\n"


def rag(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "rag", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def ask(store: str) -> tuple[dict | None, str]:
    proc = rag("ask", QUESTION, "--store", store, "--json", "-k", "10")
    out, err = proc.communicate(timeout=600)
    return (json.loads(out), "") if proc.returncode == 0 else (None, err.strip().splitlines()[-1] if err.strip() else "")


def version_of(answer: dict, edited: str, versions: dict[str, dict[str, str]]) -> str | None:
    """Which version the store answered from ("old" while the edited file shows as changed on
    disk, else "new"), or None when a citation is not an exact span of that version's text."""
    name = "old" if edited in answer["changed_sources"] else "new"
    texts = versions[name]
    exact = all(texts[c["source"]][c["start"] : c["end"]] == c["text"] for c in answer["hits"] + answer["by_source"])
    return name if exact else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=Path, default=ROOT / "seeds")
    parser.add_argument("--seconds", default="1-10", help="a range A-B of whole seconds")
    parser.add_argument("--work", type=Path, default=None, help="a folder for the store (default: a temporary one)")
    args = parser.parse_args()
    lo, hi = (int(x) for x in args.seconds.split("-"))
    work = args.work or Path(tempfile.mkdtemp(prefix="milvus-kill-"))
    sources = work / "sources"
    shutil.rmtree(sources, ignore_errors=True)
    shutil.copytree(args.sources, sources)
    store = f"milvus:{work / 'kill.db'}"
    edited = sorted(p for p in sources.rglob("*") if p.suffix in (".txt", ".md"))[0]
    base = edited.read_text("utf-8")
    first = rag("index", "--sources", str(sources), "--store", store, "--quiet")
    if first.wait(1200) != 0:
        print(first.stderr.read(), file=sys.stderr)
        return 1
    current = {p.relative_to(sources).as_posix(): p.read_text("utf-8") for p in sources.rglob("*") if p.is_file()}
    failures, revision = 0, 0
    print("kind    kill at  build finished  answered  citations  version")
    for kind in ("full", "update"):
        for second in range(lo, hi + 1):
            revision += 1
            edited.write_text(base + MARK.format(n=revision), "utf-8")
            new = {**current, edited.relative_to(sources).as_posix(): edited.read_text("utf-8")}
            proc = rag("index", "--sources", str(sources), "--store", store, "--quiet", *(["--full"] if kind == "full" else []))
            try:
                proc.wait(second)
                finished = True
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                finished = False
            answer, error = ask(store)
            key = edited.relative_to(sources).as_posix()
            version = version_of(answer, key, {"old": current, "new": new}) if answer else None
            ok = answer is not None and bool(answer["hits"]) and version is not None
            failures += not ok
            if version == "new":
                current = new
            print(f"{kind:7} {second:5d} s  {'yes' if finished else 'no':>14}  {'yes' if answer else 'NO':>8}  "
                  f"{'exact' if version else 'INEXACT':>9}  {version or error}", flush=True)
    started = time.perf_counter()
    final = rag("index", "--sources", str(sources), "--store", store, "--quiet")
    code = final.wait(1200)
    check = subprocess.run([sys.executable, "-c", (
        "import sys; from rag.index.milvus.client import parse_store, client_for; from rag.index.milvus.families import families_present;"
        f"t = parse_store({store!r}); print(len(families_present(client_for(t), 'rag')), sorted(client_for(t).list_collections()))")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"final rag index: exit {code} in {time.perf_counter() - started:.1f} s; families left, collections: "
          f"{check.stdout.strip() or check.stderr.strip()}")
    failures += code != 0 or not check.stdout.startswith("1 ")
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
