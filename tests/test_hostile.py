"""Bad inputs, everywhere a user can give one: the CLI, the sources folder, the index folder, the
HTTP API. Each must give one clear line on stderr (never a traceback), a non-zero exit where it
is an error, leave the previous index answering, and leave nothing behind that the next build
does not clean up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SEEDS, SMALL_CORPUS, write_corpus

from rag.answer.searcher import Searcher
from rag.errors import RagError
from rag.index.build import build_index
from rag.index.layout import CURRENT, current_generation
from rag.index.reading import open_index
from rag.sources.files import discover, load_documents

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def rag(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True,
                          env={**ENV, **(env or {})}, timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    assert result.returncode != 0, result.stdout[-500:]
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def answers(index: Path, question: str = "Which airport was closed after the attack?") -> dict:
    result = rag("ask", question, "--index", str(index), "--json", "-k", "3")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def leftovers(index: Path) -> list[str]:
    return sorted(p.name for p in index.iterdir() if p.name.startswith(".tmp") or p.name.startswith(f".{CURRENT}."))


# --- the command line -------------------------------------------------------------------------

@pytest.mark.model
@pytest.mark.parametrize("args,needle", [
    (("ask", ""), "empty"),
    (("ask", "   \t "), "empty"),
    (("ask", "x" * 1001), "1000"),
    (("ask", "q", "-k", "0"), "-k"),
    (("ask", "q", "-k", "101"), "-k"),
    (("ask", "q", "-k", "1e9"), "-k"),
    (("ask", "q", "-k", "five"), "-k"),
    (("ask", "q", "--model", "no/such-model"), "was built with model"),
    (("eval", "eval/seeds/test.jsonl", "--alpha", "2"), "--alpha"),
    (("eval", "eval/seeds/test.jsonl", "--threshold", "nan"), "--threshold"),
])
def test_cli_arguments(seed_index: Path, args, needle):
    args = tuple(str(ROOT / a) if a.startswith("eval/") else a for a in args)
    one_line_error(rag(*args, "--index", str(seed_index)), needle)


def test_index_path_that_is_a_file(tmp_path: Path):
    (tmp_path / "index").write_text("not a folder")
    one_line_error(rag("ask", "q", "--index", str(tmp_path / "index")), "is a file")
    one_line_error(rag("index", "--sources", str(SEEDS), "--index", str(tmp_path / "index")), "is a file")


def test_sources_path_problems(tmp_path: Path):
    one_line_error(rag("index", "--sources", str(tmp_path / "none"), "--index", str(tmp_path / "i")), "does not exist")
    (tmp_path / "file.txt").write_text("x")
    one_line_error(rag("index", "--sources", str(tmp_path / "file.txt"), "--index", str(tmp_path / "i")), "not a folder")
    (tmp_path / "empty").mkdir()
    one_line_error(rag("index", "--sources", str(tmp_path / "empty"), "--index", str(tmp_path / "i")), "no .txt or .md")
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "a.txt").write_text("  \n\t\n")
    result = rag("index", "--sources", str(tmp_path / "blank"), "--index", str(tmp_path / "i"))
    one_line_error(result, "no .txt or .md")
    assert "warning: skipping a.txt: it holds no article text" in result.stderr


@pytest.mark.model
def test_question_files(seed_index: Path, tmp_path: Path):
    cases = {
        "garbage.jsonl": (b"\xff\xfe\x00binary", "UTF-8"),
        "array.jsonl": (b'[1, 2, 3]\n', "JSON object"),
        "types.jsonl": (b'{"id": "a", "question": "q", "answerable": "false"}\n', '"answerable" must be true or false'),
        "empty.jsonl": (b"\n\n", "holds no questions"),
    }
    for name, (content, needle) in cases.items():
        (tmp_path / name).write_bytes(content)
        if name == "types.jsonl":  # rag ask reads only "id" and "question"; rag eval checks every field
            one_line_error(rag("eval", str(tmp_path / name), "--index", str(seed_index)), "types.jsonl:1", needle)
        else:
            one_line_error(rag("ask", "--questions", str(tmp_path / name), "--json", "--index", str(seed_index)), needle)
    (tmp_path / "mixed.jsonl").write_text("\ufeff" + "\n".join(json.dumps(q) for q in [
        {"id": 1, "question": 42}, {"id": 2, "question": None}, {"id": 3, "question": "Who claimed the attack?"},
        {"id": 4, "question": "a\u0000b"}, {"id": 5, "question": "x" * 2000}]) + "\n")
    result = rag("ask", "--questions", str(tmp_path / "mixed.jsonl"), "--json", "--index", str(seed_index))
    assert result.returncode == 0 and "Traceback" not in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [("error" in line) for line in lines] == [True, True, False, False, True]
    assert "must be text" in lines[0]["error"] and lines[2]["answered"]


# --- the sources folder -----------------------------------------------------------------------

@pytest.fixture
def built(tmp_path: Path, fake_encoder):
    sources = write_corpus(tmp_path / "sources", SMALL_CORPUS)
    build_index(sources, tmp_path / "index", fake_encoder)
    return sources, tmp_path / "index", fake_encoder


@pytest.mark.parametrize("name,content,needle", [
    ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "NUL bytes"),
    ("latin1.txt", "Caf\xe9 au lait.".encode("latin-1"), "not valid UTF-8"),
    ("nul.md", b"Text with a \x00 inside.", "NUL bytes"),
])
def test_unreadable_sources_stop_the_build_and_keep_the_index(built, name, content, needle):
    sources, index, encoder = built
    before = current_generation(index)
    (sources / name).write_bytes(content)
    with pytest.raises(RagError, match=needle) as info:
        build_index(sources, index, encoder)
    assert name in str(info.value)
    one_line_error(rag("index", "--sources", str(sources), "--index", str(index)), needle, name)
    assert current_generation(index) == before and leftovers(index) == []


def test_non_utf8_file_name(built):
    sources, index, encoder = built
    bad = os.fsdecode(b"caf\xe9.txt")
    (sources / bad).write_text("A fine article in a badly named file.")
    with pytest.raises(RagError, match=r"caf\\xe9.txt.*not valid UTF-8; rename it"):
        load_documents(sources)
    one_line_error(rag("index", "--sources", str(sources), "--index", str(index)), "rename it")


def test_file_over_the_size_limit(built, monkeypatch):
    sources, index, encoder = built
    (sources / "big.txt").write_text("word " * 5000)
    monkeypatch.setenv("RAG_MAX_SOURCE_MB", "0.01")
    with pytest.raises(RagError, match=r"big.txt is 0.0 MB, over the 0.01 MB limit.*RAG_MAX_SOURCE_MB"):
        load_documents(sources)
    one_line_error(rag("index", "--sources", str(sources), "--index", str(index), env={"RAG_MAX_SOURCE_MB": "0.01"}), "big.txt")
    monkeypatch.setenv("RAG_MAX_SOURCE_MB", "lots")
    with pytest.raises(RagError, match="RAG_MAX_SOURCE_MB must be a number"):
        load_documents(sources)


def test_crlf_bom_and_deep_folders_index_exactly(tmp_path: Path, fake_encoder):
    deep = tmp_path / "s" / "/".join(f"d{i}" for i in range(40))
    write_corpus(tmp_path / "s", {
        "crlf.txt": "= Harbour Report =\r\n\r\nThe harbour flooded in 1902.\r\nBoats sank at night.\r\n",
    })
    (tmp_path / "s" / "bom.md").write_bytes("\ufeff# Mill Story\n\nThe mill closed in 1921. Bread was cheap.\n".encode())
    deep.mkdir(parents=True)
    (deep / "deep.txt").write_text("A deep article about the lighthouse keeper.")
    docs = {d.id: d for d in load_documents(tmp_path / "s")}
    assert docs["crlf.txt"].title == "Harbour Report" and docs["bom.md"].title == "Mill Story"
    assert any(k.endswith("d39/deep.txt") for k in docs)
    build_index(tmp_path / "s", tmp_path / "index", fake_encoder)
    searcher = Searcher(open_index(tmp_path / "index"), fake_encoder)
    for q in ("When did the harbour flood?", "When did the mill close?", "lighthouse keeper"):
        for hit in searcher.ask(q, 3).hits:
            text = (tmp_path / "s" / hit.source).read_bytes().decode("utf-8")
            assert text[hit.start : hit.end] == hit.text


def test_links_that_leave_the_folder_or_loop(tmp_path: Path):
    outside = tmp_path / "secret.txt"
    outside.write_text("The password is swordfish.")
    sources = write_corpus(tmp_path / "s", {"a.txt": "An article about boats.", "sub/b.txt": "Another about ferries."})
    (sources / "leak.txt").symlink_to(outside)
    (sources / "inside.txt").symlink_to(sources / "a.txt")
    (sources / "sub" / "loop").symlink_to(sources)
    (sources / "outdir").symlink_to(tmp_path)
    (sources / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    warnings: list[str] = []
    found = [p.relative_to(sources).as_posix() for p in discover(sources, warnings.append)]
    assert found == ["a.txt", "inside.txt", "sub/b.txt"]
    assert any("leak.txt" in w and "outside" in w for w in warnings)
    assert any("loop" in w for w in warnings) and any("outdir" in w for w in warnings)
    assert "swordfish" not in "".join(d.text for d in load_documents(sources))


def test_file_deleted_while_read(built, monkeypatch):
    sources, index, encoder = built
    import rag.sources.files as src

    real = src.read_source

    def vanishing(root, path, limit=None):
        if path.name == "volcano.txt":
            path.unlink()
        return real(root, path, limit)

    monkeypatch.setattr(src, "read_source", vanishing)
    with pytest.raises(RagError, match="volcano.txt disappeared while the sources were read; run again"):
        load_documents(sources)


# --- the index folder -------------------------------------------------------------------------

def corrupt_copy(seed_index: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the seed index whose onnx/ is hard-linked and everything else copied."""
    copy = tmp_path / "index"
    shutil.copytree(seed_index, copy, copy_function=shutil.copy2, ignore=shutil.ignore_patterns("onnx"))
    gen = current_generation(seed_index)
    shutil.copytree(gen / "onnx", copy / gen.name / "onnx", copy_function=os.link)
    return copy, current_generation(copy)


def _shift_passage(gen: Path) -> None:
    rows = np.load(gen / "passages.npy")
    rows["end"][0] += 10**7
    np.save(gen / "passages.npy", rows)


def _manifest(gen: Path) -> dict:
    return json.loads((gen / "manifest.json").read_text())


DAMAGE = {
    "manifest garbage": (lambda g: (g / "manifest.json").write_text("{not json"), "manifest.json is unreadable"),
    "manifest wrong type": (lambda g: (g / "manifest.json").write_text(json.dumps({**_manifest(g), "passages": "88"})), "field 'passages' must be int"),
    "manifest wrong nested type": (lambda g: (g / "manifest.json").write_text(json.dumps({**_manifest(g), "chunking": {"max_tokens": [96]}})), "max_tokens"),
    "manifest no version": (lambda g: (g / "manifest.json").write_text(json.dumps({**_manifest(g), "format_version": "3"})), "format_version"),
    "passages truncated": (lambda g: (g / "passages.npy").write_bytes((g / "passages.npy").read_bytes()[:-40]), "damaged"),
    "passage strings wrong type": (lambda g: (g / "passage_strings.json").write_text('{"sources": 5, "contexts": []}'), "passage_strings.json must hold"),
    "passage outside its text": (lambda g: _shift_passage(g), "spans outside the indexed texts"),
    "sources file garbage": (lambda g: (g / "sources.jsonl").write_text('{"id": 1}\n'), "sources.jsonl:1"),
    "vectors truncated": (lambda g: (g / "vectors.npy").write_bytes((g / "vectors.npy").read_bytes()[:1000]), "damaged"),
    "sentence vectors wrong shape": (lambda g: np.save(g / "sentence_vectors.npy", np.zeros((3, 384), np.float32)), "inconsistent"),
    "bm25 vocab missing": (lambda g: (g / "bm25" / "vocab.index.json").unlink(), "damaged"),
    "term maxima missing": (lambda g: (g / "bm25" / "term_max.npy").unlink(), "damaged"),
    "sentence terms garbage": (lambda g: (g / "sentence_term_offsets.npy").write_bytes(b"xx"), "damaged"),
    "onnx model garbage": (lambda g: ((g / "onnx" / "model.onnx").unlink(), (g / "onnx" / "model.onnx").write_bytes(b"not a model")), "copy of the model"),
    "onnx config garbage": (lambda g: ((g / "onnx" / "config.json").unlink(), (g / "onnx" / "config.json").write_text("[1,")), "copy of the model"),
}


@pytest.mark.model
@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_index_files(seed_index: Path, tmp_path: Path, case: str):
    index, gen = corrupt_copy(seed_index, tmp_path)
    damage, needle = DAMAGE[case]
    damage(gen)
    line = one_line_error(rag("ask", "Who claimed the attack?", "--index", str(index)), needle)
    assert "rag index --full" in line
    if case.startswith("manifest"):  # never replaced by an update: only --full does that
        one_line_error(rag("index", "--sources", str(SEEDS), "--index", str(index)), "rag index --full")
        assert current_generation(index) == gen


@pytest.mark.model
def test_damaged_faiss_file(seed_index: Path, tmp_path: Path):
    """Exact search reads the vectors, so questions are still answered; an update needs the FAISS
    file and refuses with one line."""
    index, gen = corrupt_copy(seed_index, tmp_path)
    (gen / "dense.faiss").write_bytes(b"\x00" * 64)
    assert answers(index)["hits"]
    sources = tmp_path / "sources"
    shutil.copytree(SEEDS, sources)
    (sources / "new.txt").write_text("A new article about the river ferry and its boats.")
    one_line_error(rag("index", "--sources", str(sources), "--index", str(index)), "dense.faiss", "--full")


@pytest.mark.model
def test_current_pointer_damage(seed_index: Path, tmp_path: Path):
    index, gen = corrupt_copy(seed_index, tmp_path)
    (index / CURRENT).write_text("../../etc\n")
    one_line_error(rag("ask", "q", "--index", str(index)), "CURRENT names no generation")
    (index / CURRENT).write_text("gen-missing\n")
    one_line_error(rag("ask", "q", "--index", str(index)), "no index in")
    (index / CURRENT).write_bytes(b"\xff\xfe")
    one_line_error(rag("ask", "q", "--index", str(index)), "unreadable")


@pytest.mark.model
def test_newer_and_older_formats(seed_index: Path, tmp_path: Path):
    index, gen = corrupt_copy(seed_index, tmp_path)
    data = _manifest(gen)
    (gen / "manifest.json").write_text(json.dumps({**data, "format_version": 99}))
    one_line_error(rag("ask", "q", "--index", str(index)), "newer version of rag")
    one_line_error(rag("index", "--sources", str(SEEDS), "--index", str(index)), "newer version of rag")
    assert current_generation(index) == gen  # not destroyed
    older = {k: v for k, v in data.items() if k not in ("abstention",)}
    (gen / "manifest.json").write_text(json.dumps({**older, "format_version": 2, "chunking": {**data["chunking"], "max_tokens": 80}, "next_id": 500}))
    result = rag("index", "--sources", str(SEEDS), "--index", str(index), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "older format" in result.stderr
    rebuilt = open_index(index)
    assert rebuilt.manifest.chunking.max_tokens == 80  # its settings are kept
    assert int(rebuilt.ids.min()) >= 500  # and its id counter
    assert answers(index)["answered"]


def test_full_disk_keeps_the_index(built, monkeypatch):
    sources, index, encoder = built
    before = current_generation(index)
    import errno

    import rag.index.writing as store

    real = np.save

    def full(path, *args, **kwargs):
        if str(path).endswith("vectors.npy"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(store.np, "save", full)
    (sources / "new.txt").write_text("A new article about the harbour ferry.")
    with pytest.raises(RagError, match="No space left on device.*the current index is unchanged"):
        build_index(sources, index, encoder)
    assert current_generation(index) == before and leftovers(index) == []
    assert Searcher(open_index(index), encoder).ask("ferry", 2).hits


def test_a_failed_switch_keeps_the_index_and_leaves_no_pointer(built, monkeypatch):
    sources, index, encoder = built
    before = current_generation(index)
    import errno

    import rag.index.writing as store

    real = store.os.replace

    def refused(src, dst):
        if Path(dst).name == "CURRENT":
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(store.os, "replace", refused)
    (sources / "new.txt").write_text("A new article about the harbour ferry.")
    with pytest.raises(RagError, match="Input/output error.*the current index is unchanged"):
        build_index(sources, index, encoder)
    assert current_generation(index) == before and not list(index.glob(".CURRENT.*"))


def test_tiny_disk_if_it_can_be_mounted(tmp_path: Path, fake_encoder):
    """A real full disk: a 300 KB tmpfs (skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not allowed here")
    try:
        sources = write_corpus(tmp_path / "s", SMALL_CORPUS)
        build_index(sources, mount / "index", fake_encoder)  # fits
        before = current_generation(mount / "index")
        (sources / "big.txt").write_text(" ".join(f"Sentence number {i} about boats." for i in range(4000)))
        with pytest.raises(RagError, match="current index is unchanged"):
            build_index(sources, mount / "index", fake_encoder)
        assert current_generation(mount / "index") == before and leftovers(mount / "index") == []
        assert Searcher(open_index(mount / "index"), fake_encoder).ask("bakery", 1).hits
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


# --- the HTTP API -----------------------------------------------------------------------------

@pytest.mark.model
def test_api_bad_requests(seed_index: Path, tmp_path: Path):
    import urllib.error
    import urllib.request

    from test_app import App, free_port

    app = App(SEEDS, seed_index, free_port())
    try:
        def post(body: bytes, path: str = "gradio_api/call/ask") -> tuple[int, str]:
            request = urllib.request.Request(app.url + path, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        status, body = post(b'{"data": ["' + b"x" * 200_000 + b'", 5]}')
        assert status == 413 and "larger than" in body
        for payload, needle in [('{"data": ["q", Infinity]}', "k must be"), ('{"data": ["q", "5"]}', "k must be"),
                                ('{"data": [42, 5]}', "must be text"), ('{"data": ["", 5]}', "empty")]:
            status, body = post(payload.encode())
            assert status == 200, body
            event = json.loads(body)["event_id"]
            with urllib.request.urlopen(app.url + f"gradio_api/call/ask/{event}", timeout=60) as stream:
                text = stream.read().decode()
            assert "event: error" in text and needle in text, text
        with urllib.request.urlopen(app.url + "rag/source?name=002_1452c17848fca342.txt", timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            assert response.read().decode() == (SEEDS / "002_1452c17848fca342.txt").read_text()
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(app.url + "rag/source?name=../../../etc/passwd", timeout=30)
        assert info.value.code == 404
    finally:
        app.stop()


@pytest.mark.model
def test_cited_source_edited_after_indexing(tmp_path: Path, real_encoder):
    sources = tmp_path / "sources"
    shutil.copytree(SEEDS, sources)
    build_index(sources, tmp_path / "index", real_encoder)
    question = "Which airport was closed after the attack?"
    assert answers(tmp_path / "index", question)["changed_sources"] == []
    cited = answers(tmp_path / "index", question)["hits"][0]["source"]
    (sources / cited).write_text("Rewritten entirely.\n" + (sources / cited).read_text())
    result = rag("ask", question, "--index", str(tmp_path / "index"), "--json", "-k", "3")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    data = json.loads(result.stdout)
    assert cited in data["changed_sources"]
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and cited in warning[0] and f"rag index --index {tmp_path / 'index'}" in warning[0]
    texts = {p.name: p for p in SEEDS.iterdir()}  # the citations still quote the indexed text exactly
    for hit in data["hits"]:
        assert texts[hit["source"]].read_text()[hit["start"] : hit["end"]] == hit["text"]
