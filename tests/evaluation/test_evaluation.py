"""Evaluation: trec_eval metrics, containment relevance, BEIR folders, calibration, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SEEDS, write_corpus

from rag.answer.searcher import Searcher
from rag.answer.types import Answer, Hit
from rag.errors import RagError
from rag.evaluation.beir import eval_beir
from rag.evaluation.metrics import containment_judgements, ir_metrics
from rag.evaluation.questions import Question, contains_answer, load_beir, load_questions
from rag.evaluation.report import format_table, write_report
from rag.evaluation.runner import EvalOptions, eval_jsonl, parse_modes
from rag.index.build import build_index
from rag.index.layout import current_generation, read_manifest
from rag.index.reading import open_index


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
    return Hit(rank, 1.0 / rank, "s.txt", "t", 0, len(text), text, (0, len(text)), pid)


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
    report = eval_jsonl(path, index_dir, Searcher(open_index(index_dir), encoder), EvalOptions(k=5))
    data = report.to_json()
    assert data["questions"] == 4 and data["answerable"] == 3
    assert [r["mode"] for r in data["results"]] == ["hybrid", "dense", "bm25"]
    for r in data["results"]:
        assert set(r["metrics"]) >= {"hit@1", "hit@3", "hit@5", "hit@10", "recall@10", "mrr@10", "ndcg@10", "source@1"}
        a = r["abstention"]
        assert a["unanswerable"] == 1 and r["latency_ms"]["p50"] >= 0
        assert a["answer_rate"] == pytest.approx(1 - a["answerable_abstained"] / 3, abs=1e-4)
        assert a["abstain_rate"] == a["unanswerable_abstained"] and 0 <= a["auroc"] <= 1
    bm25 = data["results"][2]["metrics"]
    assert bm25["hit@1"] == 1.0  # the lexical signal alone finds all three here
    table = format_table(report)
    assert "hybrid" in table and "abstention" in table


def test_failures_name_what_ranked_first(jsonl_setup):
    path, index_dir, encoder = jsonl_setup
    path.write_text(json.dumps({"id": "x", "question": "bakery", "answers": ["nowhere to be found"]}))
    report = eval_jsonl(path, index_dir, Searcher(open_index(index_dir), encoder), EvalOptions(k=3, modes=("hybrid",)))
    failure = report.results[0].failures[0]
    assert failure["id"] == "x" and failure["first"]["source"] == "bakery.md"


def test_calibrate_stores_the_model(jsonl_setup):
    path, index_dir, encoder = jsonl_setup
    before = current_generation(index_dir)
    report = eval_jsonl(path, index_dir, Searcher(open_index(index_dir), encoder), EvalOptions(k=5, modes=("hybrid",), calibrate=True))
    manifest = read_manifest(index_dir)
    model = manifest.abstention
    assert model.calibrated and model.threshold == pytest.approx(report.calibration["threshold"], abs=1e-4)
    assert "q.jsonl" in model.fitted_on and manifest.extra["calibration"]["unanswerable"] == 1
    assert not report.calibration["refit_weights"]  # too few questions to refit the weights
    assert "threshold_only" in report.calibration["out_of_sample"]
    assert current_generation(index_dir) != before  # switched atomically to a new generation
    searcher = Searcher(open_index(index_dir), encoder)
    assert searcher.threshold == model.threshold
    answers = searcher.ask_many([q["question"] for q in QUESTIONS])
    assert all(a.answered == (a.support >= model.threshold) for a in answers)
    answerable = np.array([q.get("answerable", True) for q in QUESTIONS])
    in_sample = report.calibration["in_sample"]
    assert in_sample["answer_rate"] == pytest.approx(np.mean([a.answered for a, ok in zip(answers, answerable) if ok]), abs=1e-4)
    assert in_sample["abstain_rate"] == float(not answers[-1].answered)


def test_calibrate_to_an_answer_rate(jsonl_setup):
    path, index_dir, encoder = jsonl_setup
    report = eval_jsonl(path, index_dir, Searcher(open_index(index_dir), encoder),
                        EvalOptions(k=5, modes=("hybrid",), calibrate=True, answer_rate=1.0))
    assert report.calibration["in_sample"]["answer_rate"] == 1.0 and "answer 100%" in report.calibration["rule"]


def test_threshold_option_judges_without_storing(jsonl_setup):
    path, index_dir, encoder = jsonl_setup
    report = eval_jsonl(path, index_dir, Searcher(open_index(index_dir), encoder), EvalOptions(k=5, modes=("hybrid",), threshold=1.0))
    assert report.results[0].abstention["answer_rate"] == 0.0 and report.threshold == 1.0
    assert not read_manifest(index_dir).abstention.calibrated


def test_calibrate_needs_both_kinds(jsonl_setup):
    path, index_dir, encoder = jsonl_setup
    path.write_text(json.dumps(QUESTIONS[0]))
    with pytest.raises(RagError, match="both answerable and unanswerable"):
        eval_jsonl(path, index_dir, Searcher(open_index(index_dir), encoder), EvalOptions(k=5, modes=("hybrid",), calibrate=True))


@pytest.mark.parametrize("line,needle", [
    ('{"id": "a", "question": "q", "answers": "1921"}', '"answers" must be a list of strings'),
    ('{"id": "a", "question": "q", "answerable": "false"}', '"answerable" must be true or false'),
    ('{"id": "a", "question": 7}', '"question" must be a string'),
    ('{"id": [1], "question": "q"}', '"id" must be a string or a whole number'),
    ('{"id": "a", "question": "q", "sources": [1]}', '"sources" must be a list of strings'),
    ('{"id": "a", "question": "q"}\n{"id": "a", "question": "r"}', "used twice"),
    ('[1, 2]', "must be a JSON object"),
    ('{"id": "a"}', 'needs an "id" and a "question"'),
    ('{"id": "a", "question": "q"', "not valid JSON"),
])
def test_question_files_are_checked_field_by_field(tmp_path: Path, line: str, needle: str):
    path = tmp_path / "q.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(RagError, match=needle) as info:
        load_questions(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


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
    report = eval_beir(folder, tmp_path / "cache", EvalOptions(k=10, modes=("hybrid", "bm25")), logs.append, encoder=fake_encoder)
    assert report.results[0].metrics["hit@1"] == 1.0 and report.results[0].extra["answer@1"] == 1.0
    assert "indexing" in logs[0]
    calls = fake_encoder.passage_calls
    eval_beir(folder, tmp_path / "cache", EvalOptions(k=10, modes=("hybrid",)), logs.append, encoder=fake_encoder)
    assert fake_encoder.passage_calls == calls and "reusing" in logs[-1]  # cached index reused
    (folder / "corpus.jsonl").write_text((folder / "corpus.jsonl").read_text() + "\n" + json.dumps({"_id": "d4", "text": "New."}))
    eval_beir(folder, tmp_path / "cache", EvalOptions(k=10, modes=("hybrid",)), logs.append, encoder=fake_encoder)
    assert fake_encoder.passage_calls == calls + 1  # a changed corpus is indexed again


def test_superseded_evaluation_indexes_are_removed(tmp_path: Path, fake_encoder):
    """A cached evaluation index records what made it; one of the same corpus, model, chunking
    and precision made by an older format or recipe is removed, and nothing else is."""
    from rag.encoding.recipes import DEFAULT_PRECISION
    from rag.evaluation.beir import CACHE_RECORD, cache_record
    from rag.types import ChunkingConfig

    folder = make_beir(tmp_path / "mini")
    cache = tmp_path / "cache"
    eval_beir(folder, cache, EvalOptions(k=10, modes=("hybrid",)), [].append, encoder=fake_encoder)
    (today,) = cache.glob("corpus-*")
    record = json.loads((today / CACHE_RECORD).read_text())
    assert record == cache_record(load_beir(folder).corpus_sha256, fake_encoder.name, ChunkingConfig(), DEFAULT_PRECISION)

    def plant(name: str, **changes: object) -> Path:
        planted = cache / f"corpus-{name}"
        (planted / "gen-x").mkdir(parents=True)
        (planted / "gen-x" / "vectors.npy").write_bytes(b"0" * 1000)
        if changes.get("record", True):
            (planted / CACHE_RECORD).write_text(json.dumps({**record, **changes}))
        return planted

    older_recipe = plant("a", recipe=record["recipe"] - 1)
    older_format = plant("b", format=record["format"] - 1)
    newer_recipe = plant("c", recipe=record["recipe"] + 1)  # a newer checkout sharing the cache
    other_corpus = plant("d", corpus_sha256="another", recipe=record["recipe"] - 1)
    other_precision = plant("e", precision="fp32" if record["precision"] == "int8" else "int8", recipe=0)
    unrecorded = plant("f", record=False)
    logs: list[str] = []
    eval_beir(folder, cache, EvalOptions(k=10, modes=("hybrid",)), logs.append, encoder=fake_encoder)
    assert not older_recipe.exists() and not older_format.exists()
    assert all(p.exists() for p in (today, newer_recipe, other_corpus, other_precision, unrecorded))
    removed = [line for line in logs if line.startswith("removed")]
    assert len(removed) == 2 and all("recipe" in line and "MB" in line for line in removed)


def test_beir_answerable_field_and_calibration(tmp_path: Path, fake_encoder):
    folder = make_beir(tmp_path / "mini")
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines()]
    queries.append({"_id": "u1", "text": "What colour is the bakery door?", "answerable": False})
    queries.append({"_id": "u2", "text": "Who painted the volcano?", "answerable": False})
    queries[0]["answerable"] = True
    (folder / "queries.jsonl").write_text("\n".join(map(json.dumps, queries)))
    data = load_beir(folder)
    assert [(q.id, q.answerable) for q in data.questions] == [("q1", True), ("q2", True), ("u1", False), ("u2", False)]
    report = eval_beir(folder, tmp_path / "cache", EvalOptions(k=10, modes=("hybrid",), calibrate=True), lambda m: None, encoder=fake_encoder)
    a = report.results[0].abstention
    assert (a["answerable"], a["unanswerable"]) == (2, 2) and 0 <= a["auroc"] <= 1
    assert report.results[0].metrics["hit@1"] == 1.0  # ranking metrics over the answerable ones only
    assert report.calibration["groups"] >= 2  # grouped by the articles' titles
    assert read_manifest(Path(report.index)).abstention.calibrated


@pytest.mark.parametrize("field,value,needle", [("answerable", "false", "true or false"), ("text", 5, '"text" must be a string')])
def test_beir_fields_are_checked(tmp_path: Path, field, value, needle):
    folder = make_beir(tmp_path / "mini")
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text().splitlines()]
    queries[1][field] = value
    (folder / "queries.jsonl").write_text("\n".join(map(json.dumps, queries)))
    with pytest.raises(RagError, match=needle) as info:
        load_beir(folder)
    assert "queries.jsonl:2" in str(info.value)


def test_not_a_beir_folder(tmp_path: Path):
    with pytest.raises(RagError, match="not a BEIR folder"):
        load_beir(tmp_path)


def test_report_files(jsonl_setup, tmp_path: Path):
    path, index_dir, encoder = jsonl_setup
    report = eval_jsonl(path, index_dir, Searcher(open_index(index_dir), encoder), EvalOptions(k=5, modes=("hybrid", "bm25")))
    md, png = write_report(report, tmp_path / "out" / "report.md")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "report.png" in md.read_text()
    assert "| hybrid |" in md.read_text() and "AUROC" in md.read_text()
    page, _ = write_report(report, tmp_path / "out" / "report.html")
    assert "<table" in page.read_text() and "<script" not in page.read_text()


def test_seed_question_sets_shape():
    dev = load_questions(ROOT / "eval" / "seeds" / "dev.jsonl")
    test = load_questions(ROOT / "eval" / "seeds" / "test.jsonl")
    both = dev + test
    assert len(both) >= 150 and len({q.id for q in both}) == len(both)  # no question in both splits
    kinds = [json.loads(line)["kind"] for f in ("dev", "test") for line in (ROOT / "eval" / "seeds" / f"{f}.jsonl").read_text().splitlines()]
    assert kinds.count("unanswerable") >= 40 and all(not q.answerable for q, k in zip(both, kinds) if k in ("unanswerable", "off_topic"))
    assert {q.question.lower() for q in dev}.isdisjoint(q.question.lower() for q in test)


@pytest.mark.model
def test_eval_agrees_with_an_independent_count_from_ask(seed_index: Path, tmp_path: Path):
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    questions = ROOT / "eval" / "seeds" / "dev.jsonl"
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
        (("eval", str(tmp_path)), "not a BEIR folder"),
        (("eval", str(tmp_path / "q.jsonl"), "--answer-rate", "0.9"), "add --calibrate"),
        (("eval", str(tmp_path / "q.jsonl"), "--report", "out.pdf"), ".md or .html"),
    ]:
        result = run(*args)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
