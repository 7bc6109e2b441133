"""The command line end to end: real model on the seeds, and every error path as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS, SMALL_CORPUS, write_corpus

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def rag(*args: str, cwd: Path | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rag", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        input=input,
        timeout=600,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "index"
    result = rag("index", "--sources", str(SEEDS), "--index", str(root))
    assert result.returncode == 0, result.stderr
    assert "indexed 5 sources into" in result.stdout and "passages" in result.stdout
    return root


def check_citations(answer: dict) -> None:
    for hit in answer["hits"]:
        text = (SEEDS / hit["source"]).read_text("utf-8")
        assert text[hit["start"] : hit["end"]] == hit["text"]
        assert hit["start"] <= hit["highlight"][0] < hit["highlight"][1] <= hit["end"]


@pytest.mark.model
def test_ask_json(cli_index: Path):
    result = rag("ask", "Which airport was closed after the attack?", "--index", str(cli_index), "-k", "4", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["question"] == "Which airport was closed after the attack?"
    assert answer["answered"] is True and len(answer["hits"]) == 4
    assert set(answer["hits"][0]) == {"rank", "score", "support", "source", "title", "start", "end", "text", "highlight"}
    assert answer["support"] == max(h["support"] for h in answer["hits"]) >= answer["threshold"]
    assert answer["missing"] == []
    assert "Modibo Keita International Airport" in answer["hits"][0]["text"]
    check_citations(answer)


@pytest.mark.model
def test_ask_readable(cli_index: Path):
    result = rag("ask", "Who leads the junta?", "--index", str(cli_index), "-k", "2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[1] support" in out and "[2] support" in out and "[3]" not in out
    assert "(threshold " in out and ": answered" in out
    assert "characters" in out and "»" in out and "«" in out  # citation line and marked sentence


@pytest.mark.model
def test_ask_off_topic_abstains(cli_index: Path):
    result = rag("ask", "What is a good recipe for banana bread?", "--index", str(cli_index), "--json")
    answer = json.loads(result.stdout)
    assert answer["answered"] is False and answer["hits"]
    check_citations(answer)
    text = rag("ask", "What is a good recipe for banana bread?", "--index", str(cli_index)).stdout
    assert "The sources don't answer this" in text and "not an answer" in text


@pytest.mark.model
def test_batch(cli_index: Path, tmp_path: Path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        "\n".join(
            json.dumps(q)
            for q in [
                {"id": "a", "question": "How many people died?", "answers": ["77"]},
                {"id": 7, "question": "   "},
                {"id": "c", "question": "Who won the World Cup in 2022?"},
            ]
        )
        + "\n"
    )
    result = rag("ask", "--questions", str(questions), "--index", str(cli_index), "-k", "3", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["a", 7, "c"]
    assert lines[0]["answered"] is True and len(lines[0]["hits"]) == 3
    assert lines[1]["answered"] is False and lines[1]["hits"] == [] and "empty" in lines[1]["error"]
    assert lines[2]["answered"] is False
    for line in lines:
        check_citations(line)


def test_no_index_yet(tmp_path: Path):
    assert_one_line_error(rag("ask", "Anything?", "--index", str(tmp_path / "none")), "rag index")


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question(tmp_path: Path, question: str):
    assert_one_line_error(rag("ask", question, "--index", str(tmp_path)), "question is empty")


def test_missing_sources_folder(tmp_path: Path):
    assert_one_line_error(rag("index", "--sources", str(tmp_path / "missing"), "--index", str(tmp_path / "i")), "does not exist")


def test_unreadable_source_file(tmp_path: Path):
    write_corpus(tmp_path / "s", {"good.txt": "Fine text."})
    (tmp_path / "s" / "latin1.txt").write_bytes(b"Caf\xe9")
    assert_one_line_error(rag("index", "--sources", str(tmp_path / "s"), "--index", str(tmp_path / "i")), "latin1.txt", "UTF-8")
    assert not (tmp_path / "i").exists()  # nothing half-built


@pytest.mark.model
def test_model_mismatch(cli_index: Path, tmp_path: Path):
    other = tmp_path / "other-model"
    other.mkdir()
    assert_one_line_error(rag("ask", "Anything?", "--index", str(cli_index), "--model", str(other)), "rebuild")


def test_usage_errors_are_one_line(tmp_path: Path):
    assert_one_line_error(rag("ask", "q", "-k", "0"), "-k")
    assert_one_line_error(rag("ask", "q", "-k", "many"), "-k")
    assert_one_line_error(rag("frobnicate"))
    assert_one_line_error(rag("ask", "--index", str(tmp_path)), "no question")


def test_bad_questions_file(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "question": "ok"}\nnot json\n')
    assert_one_line_error(rag("ask", "--questions", str(bad), "--json"), "bad.jsonl:2")
    missing_field = tmp_path / "m.jsonl"
    missing_field.write_text('{"question": "no id"}\n')
    assert_one_line_error(rag("ask", "--questions", str(missing_field), "--json"), '"id"')
    assert_one_line_error(rag("ask", "--questions", str(tmp_path / "nope.jsonl"), "--json"), "not found")
    assert_one_line_error(rag("ask", "--questions", str(bad)), "--json")


def test_index_rebuild_keeps_the_old_one_when_sources_break(tmp_path: Path, fake_encoder):
    from rag.index.build import build_index
    from rag.index.layout import current_generation

    write_corpus(tmp_path / "s", SMALL_CORPUS)
    build_index(tmp_path / "s", tmp_path / "i", fake_encoder)
    before = current_generation(tmp_path / "i")
    (tmp_path / "s" / "broken.txt").write_bytes(b"\xff\xfe\xfa")
    assert_one_line_error(rag("index", "--sources", str(tmp_path / "s"), "--index", str(tmp_path / "i")), "broken.txt")
    assert current_generation(tmp_path / "i") == before


@pytest.mark.model
def test_ask_strict_never_answers_what_lenient_refuses(cli_index: Path, tmp_path: Path):
    question = "How many Wagner soldiers died?"
    lenient = json.loads(rag("ask", question, "--index", str(cli_index), "--json").stdout)
    strict = json.loads(rag("ask", question, "--index", str(cli_index), "--json", "--abstain", "strict").stdout)
    assert lenient["abstain"] == "lenient" and strict["abstain"] == "strict"
    assert strict["threshold"] >= lenient["threshold"] and strict["support"] == lenient["support"]
    assert strict["answered"] == (strict["support"] >= strict["threshold"]) and (lenient["answered"] or not strict["answered"])
    assert [h["text"] for h in strict["hits"]] == [h["text"] for h in lenient["hits"]]
    check_citations(strict)
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "a", "question": question}) + "\n")
    batch = rag("ask", "--questions", str(questions), "--index", str(cli_index), "--json", "--abstain", "strict")
    assert json.loads(batch.stdout.splitlines()[0])["threshold"] == strict["threshold"]


def test_ask_bad_abstain_is_one_line(tmp_path: Path):
    result = rag("ask", "Who?", "--index", str(tmp_path), "--abstain", "sometimes")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--abstain" in result.stderr and "lenient" in result.stderr and len(result.stderr.strip().splitlines()) == 1
