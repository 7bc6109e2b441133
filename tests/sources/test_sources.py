"""Stage 1: discovery, decoding, titles, and page furniture kept out of passages."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SEEDS, write_corpus
from fakes import HashEncoder

from rag.chunking.packing import chunk_document
from rag.errors import RagError
from rag.sources.files import discover, load_documents, read_source
from rag.sources.segments import parse_document
from rag.types import ChunkingConfig

FURNITURE = [
    "Photo credit",
    "Image caption",
    "Also read",
    "PREV Hassan",
    "NEXT Tensions",
    "pic.twitter.com",
    "(@SahelLeaks)",
    "Short link",
    "Article information",
    "Author, Ousmane Badiane",
    "18 minutes ago",
    "View of the capital of Mali, Bamako",  # alt text above a photo credit
    "Video capture from an AFPTV video showing",
    "Flags of Economic Community",  # photo caption ending in an agency credit
    "List of Islamist terrorist attacks",  # "See also" links
]


@pytest.fixture(scope="module")
def seed_docs():
    return load_documents(SEEDS)


@pytest.fixture(scope="module")
def seed_passages(seed_docs):
    counter = HashEncoder().count_tokens
    return [c for d in seed_docs for c in chunk_document(d, counter, ChunkingConfig())]


def test_every_seed_is_read(seed_docs):
    assert [d.id for d in seed_docs] == sorted(p.name for p in SEEDS.glob("*.txt"))
    for doc in seed_docs:
        assert doc.text == (SEEDS / doc.id).read_bytes().decode("utf-8")


@pytest.mark.parametrize("snippet", FURNITURE)
def test_furniture_never_reaches_a_passage(seed_docs, seed_passages, snippet):
    assert any(snippet in d.text for d in seed_docs), "the seed should contain it"
    assert not any(snippet in p.text for p in seed_passages)
    for doc in seed_docs:
        for seg in doc.segments:
            assert snippet not in doc.text[seg.start : seg.end]


def test_no_lone_dash_passage(seed_passages):
    assert all(p.text.strip("-–— \n") for p in seed_passages)


def test_article_text_is_kept(seed_passages):
    joined = "\n".join(p.text for p in seed_passages)
    for sentence in [
        "Responsibility for the attack has been claimed by the al-Qaeda-linked",
        "- Casualties1: 77-100 killed",
        "The Ministry of Security assured residents",
        "Shops began to reopen Wednesday",
        "Malian authorities closed Modibo Keita International Airport after the attack.",
    ]:
        assert sentence in joined


def test_titles(seed_docs):
    titles = {d.id[:3]: d.title for d in seed_docs}
    assert titles["002"] == "2024 Bamako attacks"
    assert titles["003"] == "Attack in Bamako: What do we know about the shooting claimed by JNIM?"
    assert titles["000"].startswith("An estimated 77 people have been killed")
    assert titles["004"].startswith("An Al-Qaeda-linked group")  # not the photo caption
    assert all(len(t) <= 90 for t in titles.values())


def test_section_heading_gives_context_not_text(seed_docs, seed_passages):
    wiki = [p for p in seed_passages if p.source.startswith("002")]
    casualties = [p for p in wiki if "Le Monde reported" in p.text]
    assert casualties and all(p.context == "2024 Bamako attacks — Casualties" for p in casualties)
    assert not any("==" in p.text for p in wiki)
    infobox = [p for p in wiki if "Casualties1" in p.text]
    assert infobox[0].context.endswith("Infobox")
    lead = [p for p in wiki if p.text.startswith("On 17 September 2024, gunmen")]
    assert lead[0].context == "2024 Bamako attacks"  # the lead is not part of the infobox
    news = [p for p in seed_passages if "Why is this attack" not in p.text and p.source.startswith("000")]
    assert any(p.context == "Why is this attack significant?" for p in news)


def test_discover_recurses_and_filters(tmp_path: Path):
    write_corpus(tmp_path, {"a.txt": "A.", "sub/b.md": "B.", "c.pdf": "x", ".hidden/d.txt": "D.", "e.TXT": "E."})
    assert [p.relative_to(tmp_path).as_posix() for p in discover(tmp_path)] == ["a.txt", "e.TXT", "sub/b.md"]


def test_missing_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(RagError, match="does not exist; pass --sources"):
        discover(tmp_path / "nope")


def test_invalid_utf8_names_the_file(tmp_path: Path):
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 au lait")
    with pytest.raises(RagError, match=r"bad\.txt is not valid UTF-8"):
        load_documents(tmp_path)


def test_empty_file_is_skipped_with_a_warning(tmp_path: Path):
    write_corpus(tmp_path, {"empty.txt": "  \n\n", "ok.txt": "Something happened here."})
    warnings: list[str] = []
    docs = load_documents(tmp_path, warnings.append)
    assert [d.id for d in docs] == ["ok.txt"]
    assert len(warnings) == 1 and "empty.txt" in warnings[0]


def test_digests_are_the_documents_own_without_parsing(tmp_path: Path, monkeypatch):
    import rag.sources.files as src

    write_corpus(tmp_path, {"a.txt": "First article.", "sub/b.md": "# B\n\nSecond one.", "empty.txt": " \n"})
    (tmp_path / "crlf.txt").write_bytes("Windows lines.\r\nCafé au lait.\r\n".encode())
    expected = src.digests_of(load_documents(tmp_path, lambda m: None))
    monkeypatch.setattr(src, "parse_document", lambda *a, **k: pytest.fail("parsed a file"))
    digests = src.source_digests(tmp_path)
    assert {k: v for k, v in digests.items() if k != "empty.txt"} == expected and len(expected) == 3
    assert "empty.txt" in digests  # listed, so a folder holding one never matches a manifest without parsing
    assert src.matching_digests(tmp_path, lambda d: True) == digests
    assert src.matching_digests(tmp_path, lambda d: False) is None


def test_matching_digests_warns_only_on_a_match(tmp_path: Path):
    from rag.sources.files import matching_digests

    write_corpus(tmp_path / "s", {"a.txt": "An article."})
    (tmp_path / "outside.txt").write_text("Not a source.")
    (tmp_path / "s" / "leak.txt").symlink_to(tmp_path / "outside.txt")
    warnings: list[str] = []
    assert matching_digests(tmp_path / "s", lambda d: False, warnings.append) is None and warnings == []
    assert matching_digests(tmp_path / "s", lambda d: True, warnings.append) is not None
    assert len(warnings) == 1 and "leak.txt" in warnings[0]
    (tmp_path / "s" / "huge.txt").write_text("x" * 2000)
    with pytest.MonkeyPatch.context() as mp:  # an unreadable file is no match: loading says what is wrong
        mp.setenv("RAG_MAX_SOURCE_MB", "0.001")
        assert matching_digests(tmp_path / "s", lambda d: True) is None


def test_folder_without_text_is_an_error(tmp_path: Path):
    write_corpus(tmp_path, {"empty.md": ""})
    with pytest.raises(RagError, match="no .txt or .md files with text"):
        load_documents(tmp_path, lambda m: None)


def test_crlf_offsets_point_into_the_original_text(tmp_path: Path):
    (tmp_path / "w.txt").write_bytes("First line here.\r\nSecond one — with a dash.\r\n".encode())
    doc = read_source(tmp_path, tmp_path / "w.txt")
    assert doc is not None
    chunks = chunk_document(doc, HashEncoder().count_tokens, ChunkingConfig())
    assert "\r\n" in doc.text
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert not c.text.endswith("\r")


def test_markdown_title_and_headings():
    doc = parse_document("x.md", "# Big News\n\nIt rained.\n\n## Aftermath\n\nRoads flooded.\n", "h")
    assert doc is not None and doc.title == "Big News"
    assert [s.context for s in doc.segments] == ["Big News", "Big News — Aftermath"]


def test_untitled_article_gets_its_first_sentence_shortened():
    text = "An extremely long opening sentence " + "that keeps going " * 10 + "and ends here. Next."
    doc = parse_document("x.txt", text, "h")
    assert doc is not None and doc.title.endswith("…") and len(doc.title) <= 90
    assert doc.title.startswith("An extremely long opening sentence")
