"""Evaluation: trec_eval metrics, containment relevance, BEIR folders, calibration, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS, write_corpus

from rag.build import build_index
from rag.errors import RagError
from rag.eval_runner import eval_beir, eval_jsonl, format_table, parse_modes, write_report
from rag.evaluation import (
    Question,
    containment_judgements,
    contains_answer,
    ir_metrics,
    load_beir,
    load_questions,
)
from rag.search import Searcher
from rag.store import current_generation, open_index, read_manifest
from rag.types import Answer, Hit


def test_ir_metrics_by_hand():
    qrels = {"a": {"d1": 1}, "b": {"d3": 1, "d4": 1}, "c": {"d9": 1}}
    run = {"a": ["d1", "d2"], "b": ["d2", "d3"], "c": ["d5"]}
    metrics, curve = ir_metrics(qrels, run)
    assert metrics["hit@1"] == pytest.approx(1 / 3)
    assert metrics["hit@3"] == pytest.approx(2 / 3) == curve[2]
    assert metrics["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert metrics["recall@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert metrics["ndcg@10"] == pytest.approx((1 + (1 / 1.5849625) / (1 + 1 / 1.5849625) + 0) / 3, rel=1e-4)
    # a question with nothing retrieved still counts, as zero
    assert ir_metrics(qrels, {"a": ["d1"]})[0]["hit@1"] == pytest.approx(1 / 3)


def test_run_order_not_scores_decides():
    metrics, _ = ir_metrics({"q": {"z": 1}}, {"q": ["a", "z"]})
    assert metrics["mrr@10"] == 0.5  # trec_eval would break score ties by id; ranks are kept


def test_containment_is_case_and_space_insensitive():
    assert contains_answer("The  Modibo\nKeita airport", ["modibo keita"])


def _hit(rank: int, pid: int, text: str) -> Hit:
    return Hit(rank, 1.0 / rank, "s.txt", "t", 0, len(text), text, (0, len(text)), pid, 0.5, 0.5)


def test_a_hit_counts_only_if_the_text_it_shows_has_the_answer():
    q = Question("q1", "?", ("gold",))
    answer = Answer("?", True, (_hit(1, 7, "no answer here"), _hit(2, 8, "the gold is here")))
    qrels, run = containment_judgements([q], [answer], {"q1": {7, 8}})
    assert qrels == {"q1": {"p7": 1, "p8": 1}}  # passage 7 holds it, but its shown part does not
    assert run["q1"] == ["p7-shown-without-answer", "p8"]
    assert ir_metrics(qrels, run)[0]["mrr@10"] == 0.5


def test_parse_modes():
    assert parse_modes("bm25, hybrid,bm25") == ["bm25", "hybrid"]
    with pytest.raises(RagError, match="--modes"):
        parse_modes("hybrid,sparse")


QUESTIONS = [
    {"id": "a", "question": "When did the bakery ovens stop burning wood?", "answers": ["1921"], "sources": ["bakery.md"]},
    {"id": "b", "question": "When did the ferry stop crossing the river?", "answers": ["1968"]},
    {"id": "c", "question": "How many people lived in the harbour town?", "answers": ["3,000"]},
    {"id": "u", "question": "What is the price of tea in China?", "answerable": False},
]


@pytest.fixture
def jsonl_setup(small_sources: Path, tmp_path: Path, fake_encoder):
    build_index(small_sources, tmp_path / "index", fake_encoder)
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(q) for q in QUESTIONS))
    return path, tmp_path / "index", fake_encoder


def test_eval_jsonl_side_by_side(jsonl_setup):
    path, index_dir, encoder = jsonl_setup
    report = eval_jsonl(path, index_dir, Searcher(open_index(index_dir), encoder), 5, ["hybrid", "dense", "bm25"], False)
    data = report.to_json()
    assert data["questions"] == 4 and data["answerable"] == 3
    assert [r["mode"] for r in data["results"]] == ["hybrid", "dense", "bm25"]
    for r in data["results"]:
        assert set(r["metrics"]) >= {"hit@1", "hit@3", "hit@5", "hit@10", "recall@10", "mrr@10", "ndcg@10", "source@1"}
        assert r["abstention"]["unanswerable"] == 1 and r["latency_ms"]["p50"] >= 0
    bm25 = data["results"][2]["metrics"]
    assert bm25["hit@1"] == 1.0  # the lexical signal alone finds all three here
    table = format_table(report)
    assert "hybrid" in table and "abstention" in table


def test_failures_name_what_ranked_first(jsonl_setup):
    path, index_dir, encoder = jsonl_setup
    path.write_text(json.dumps({"id": "x", "question": "bakery", "answers": ["nowhere to be found"]}))
    report = eval_jsonl(path, index_dir, Searcher(open_index(index_dir), encoder), 3, ["hybrid"], False)
    failure = report.results[0].failures[0]
    assert failure["id"] == "x" and failure["first"]["source"] == "bakery.md"


def test_calibrate_stores_the_threshold(jsonl_setup):
    path, index_dir, encoder = jsonl_setup
    before = current_generation(index_dir)
    report = eval_jsonl(path, index_dir, Searcher(open_index(index_dir), encoder), 5, ["hybrid"], True)
    manifest = read_manifest(index_dir)
    assert manifest.abstain_calibrated and manifest.abstain_threshold == report.calibration["threshold"]
    assert manifest.extra["calibration"]["unanswerable"] == 1
    assert current_generation(index_dir) != before  # switched atomically to a new generation
    searcher = Searcher(open_index(index_dir), encoder)
    assert searcher.threshold == report.calibration["threshold"]
    answers = searcher.ask_many([q["question"] for q in QUESTIONS])
    threshold = report.calibration["threshold"]
    assert all(a.answered == (a.support >= threshold) for a in answers)
    answerable = [a for q, a in zip(QUESTIONS, answers) if q.get("answerable", True)]
    assert report.calibration["answerable_abstained_rate"] == pytest.approx(
        sum(not a.answered for a in answerable) / len(answerable)
    )
    assert report.calibration["unanswerable_answered_rate"] == float(answers[-1].answered)


def test_calibrate_needs_both_kinds(jsonl_setup):
    path, index_dir, encoder = jsonl_setup
    path.write_text(json.dumps(QUESTIONS[0]))
    with pytest.raises(RagError, match="both answerable and unanswerable"):
        eval_jsonl(path, index_dir, Searcher(open_index(index_dir), encoder), 5, ["hybrid"], True)


def make_beir(folder: Path) -> Path:
    corpus = [
        {"_id": "d1", "title": "Volcano", "text": "The volcano last erupted in 1902 and destroyed the harbour."},
        {"_id": "d2", "title": "Bakery", "text": "The bakery ovens burned wood until 1921."},
        {"_id": "d3", "title": "River", "text": "A ferry crossed the river until the bridge opened in 1968."},
    ]
    queries = [{"_id": "q1", "text": "When did the volcano erupt?"}, {"_id": "q2", "text": "Until when did the ovens burn wood?"}]
    write_corpus(folder, {
        "corpus.jsonl": "\n".join(map(json.dumps, corpus)),
        "queries.jsonl": "\n".join(map(json.dumps, queries)),
        "qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n",
        "answers.jsonl": "\n".join(map(json.dumps, [{"_id": "q1", "answers": ["1902"]}, {"_id": "q2", "answers": ["1921"]}])),
    })
    return folder


def test_beir_folder(tmp_path: Path, fake_encoder):
    folder = make_beir(tmp_path / "mini")
    data = load_beir(folder)
    assert len(data.corpus) == 3 and data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    assert data.questions[0].answers == ("1902",)
    logs: list[str] = []
    report = eval_beir(folder, tmp_path / "cache", fake_encoder, 10, ["hybrid", "bm25"], logs.append)
    assert report.results[0].metrics["hit@1"] == 1.0 and report.results[0].extra["answer@1"] == 1.0
    assert "indexing" in logs[0]
    calls = fake_encoder.passage_calls
    eval_beir(folder, tmp_path / "cache", fake_encoder, 10, ["hybrid"], logs.append)
    assert fake_encoder.passage_calls == calls and "reusing" in logs[-1]  # cached index reused
    (folder / "corpus.jsonl").write_text((folder / "corpus.jsonl").read_text() + "\n" + json.dumps({"_id": "d4", "text": "New."}))
    eval_beir(folder, tmp_path / "cache", fake_encoder, 10, ["hybrid"], logs.append)
    assert fake_encoder.passage_calls == calls + 1  # a changed corpus is indexed again


def test_not_a_beir_folder(tmp_path: Path):
    with pytest.raises(RagError, match="not a BEIR folder"):
        load_beir(tmp_path)


def test_report_files(jsonl_setup, tmp_path: Path):
    path, index_dir, encoder = jsonl_setup
    report = eval_jsonl(path, index_dir, Searcher(open_index(index_dir), encoder), 5, ["hybrid", "bm25"], False)
    md, png = write_report(report, tmp_path / "out" / "report.md")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "report.png" in md.read_text()
    assert "| hybrid |" in md.read_text()
    page, _ = write_report(report, tmp_path / "out" / "report.html")
    assert "<table" in page.read_text() and "<script" not in page.read_text()


def test_seed_question_set_shape():
    questions = load_questions(ROOT / "eval" / "seed_questions.jsonl")
    assert len(questions) >= 40 and sum(not q.answerable for q in questions) >= 5
    assert len({q.id for q in questions}) == len(questions)


@pytest.mark.model
def test_eval_agrees_with_an_independent_count_from_ask(seed_index: Path, tmp_path: Path):
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    questions = ROOT / "eval" / "seed_questions.jsonl"
    run = lambda *a: subprocess.run([sys.executable, "-m", "rag", *a], capture_output=True, text=True, env=env, timeout=600)  # noqa: E731
    evaluated = run("eval", str(questions), "--index", str(seed_index), "-k", "5", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    asked = run("ask", "--questions", str(questions), "--index", str(seed_index), "-k", "5", "--json")
    lines = [json.loads(line) for line in asked.stdout.splitlines()]
    truth = {q.id: q for q in load_questions(questions)}
    ranks = []
    for line in lines:
        q = truth[str(line["id"])]
        if not q.answerable:
            continue
        found = [h["rank"] for h in line["hits"] if any(" ".join(a.lower().split()) in " ".join(h["text"].lower().split()) for a in q.answers)]
        ranks.append(found[0] if found else None)
    hybrid = report["results"][0]["metrics"]
    assert hybrid["hit@1"] == pytest.approx(sum(r == 1 for r in ranks) / len(ranks), abs=1e-4)
    assert hybrid["hit@5"] == pytest.approx(sum(r is not None for r in ranks) / len(ranks), abs=1e-4)
    assert hybrid["mrr@10"] == pytest.approx(sum(1 / r for r in ranks if r) / len(ranks), abs=1e-4)
    abstained = sum(1 for line in lines if not truth[str(line["id"])].answerable and not line["answered"])
    assert report["results"][0]["abstention"]["unanswerable_abstained"] == abstained


def test_eval_cli_errors(tmp_path: Path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "rag", *a], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)  # noqa: E731
    for args, needle in [
        (("eval", str(tmp_path / "none.jsonl")), "not found"),
        (("eval", str(SEEDS / "000_8eb0f8b079314b7e.txt"), "--modes", "fast"), "--modes"),
        (("eval", str(tmp_path), "--calibrate"), "--calibrate needs"),
        (("eval", str(tmp_path / "q.jsonl"), "--report", "out.pdf"), ".md or .html"),
    ]:
        result = run(*args)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
