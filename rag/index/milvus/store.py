"""Stage 4, vectors -> Milvus: the same index in Milvus collections (server or Milvus Lite).

One family of three collections per full build (names and the live pointer: rag.index.milvus.families):

    passages    one row per passage: id, source, its file's sha256, start/end offsets, text,
                context, sentence spans, sentence stems, BM25 stems (Milvus's BM25 function
                indexes them into a sparse field), the unit vector, and `gen`, the generation
                that inserted it
    sentences   one row per sentence: id (passage id * 1024 + position), passage, vector
    meta        blobs (zlib + base64 in 60 kB rows): each generation's manifest and lexicon
                (vocabulary, document frequencies, best scores), the source texts by sha256,
                and the model copy

Dense and BM25 search run on the engine (one hybrid request); a question's candidates are
then fetched and scored by the same functions as the folder store's, so answers agree.

Crash safety: Milvus has no transactions across rows, so a generation is made visible by one
write, the pointer row. A full build fills a new family beside the live one and switches
the pointer to it; only then are the old family's collections dropped. An update inserts its
rows into the live family with `gen` = the new generation (readers filter `gen <= current`,
so they never see them early), then writes the new manifest and lexicon, then switches the
pointer, and only then deletes the rows it replaced. Between the switch and the delete,
readers drop rows whose file sha256 is not the manifest's. A killed build leaves rows above
the committed generation, replaced rows below it, or a family the pointer does not name; the
next build removes all three before it starts. A reader whose family was dropped under it
gets GenerationGone and reopens the live one. One writer at a time: Milvus has no lock we can
take atomically, so a second concurrent `rag index` on the same collection is not detected
(run updates from one place).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from rag.errors import RagError
from rag.index.lexical import Lexicon, lexicon_of, stems_of
from rag.index.locking import checkpoint
from rag.index.milvus.client import (
    BLOB_PART,
    FETCH,
    INSERT_BATCH,
    SENTENCE_SLOTS,
    TEXT_MAX,
    MilvusTarget,
    _ids_filter,
    _quoted,
    client_for,
)
from rag.index.milvus.families import Family, key_value_schema, switch
from rag.types import Manifest, Passage


class MilvusStore:
    """Reads and writes one index in Milvus: blobs, passages and sentences."""

    def __init__(self, target: MilvusTarget, family: Family) -> None:
        self.target = target
        self.family = family
        self.client = client_for(target)
        self.passages_name, self.sentences_name, self.meta_name = family.names

    # -- blobs --------------------------------------------------------------------------

    def exists(self) -> bool:
        return bool(self.client.has_collection(self.meta_name))

    def put_blob(self, name: str, data: bytes) -> None:
        text = base64.b64encode(zlib.compress(data, 6)).decode("ascii")
        parts = [text[i : i + BLOB_PART] for i in range(0, len(text), BLOB_PART)] or [""]
        rows = [{"key": f"{name}#{i}", "value": part, "v": [0.0, 0.0]} for i, part in enumerate(parts)]
        for lo in range(0, len(rows), 50):
            self.client.upsert(self.meta_name, rows[lo : lo + 50])
        self.client.upsert(self.meta_name, [{"key": name, "value": str(len(parts)), "v": [0.0, 0.0]}])

    def get_blob(self, name: str) -> bytes | None:
        head = self.client.get(self.meta_name, ids=[name], output_fields=["value"])
        if not head:
            return None
        count = int(head[0]["value"])
        keys = [f"{name}#{i}" for i in range(count)]
        found: dict[str, str] = {}
        for lo in range(0, len(keys), 50):
            for row in self.client.get(self.meta_name, ids=keys[lo : lo + 50], output_fields=["value"]):
                found[row["key"]] = row["value"]
        if len(found) != count:
            raise RagError(f"the {self.target.describe()} is damaged (blob {name} is incomplete); rebuild it with: rag index --full")
        return zlib.decompress(base64.b64decode("".join(found[k] for k in keys)))

    def delete_blob(self, name: str) -> None:
        head = self.client.get(self.meta_name, ids=[name], output_fields=["value"])
        if head:
            keys = [name] + [f"{name}#{i}" for i in range(int(head[0]["value"]))]
            self.client.delete(self.meta_name, ids=keys)

    def manifest_json(self, gen: int) -> dict[str, Any]:
        data = self.get_blob(f"manifest/{gen}")
        if data is None:
            raise RagError(f"the {self.target.describe()} is damaged (manifest of generation {gen} is missing); "
                           "rebuild it with: rag index --full")
        return json.loads(data)

    def lexicon(self, gen: int) -> Lexicon:
        data = self.get_blob(f"lexicon/{gen}")
        if data is None:
            raise RagError(f"the {self.target.describe()} is damaged (lexicon of generation {gen} is missing); "
                           "rebuild it with: rag index --full")
        raw = json.loads(data)
        vocab = {s: i for i, s in enumerate(raw["stems"])}
        return Lexicon(vocab, np.array(raw["df"], dtype=np.int64), np.array(raw["term_max"], dtype=np.float32),
                       int(raw["n"]), float(raw["avgdl"]))

    def text(self, sha256: str) -> str | None:
        data = self.get_blob(f"text/{sha256}")
        return None if data is None else data.decode("utf-8")

    # -- writing ------------------------------------------------------------------------

    def create(self, dimension: int) -> None:
        """This family's three collections, empty (what a killed build left under the same
        names dropped); the live family, if another, is not touched."""
        from pymilvus import DataType, Function, FunctionType

        for name in self.family.names:
            if self.client.has_collection(name):
                self.client.drop_collection(name)
        vector_index = ("FLAT", {}) if self.target.lite else ("HNSW", {"M": 32, "efConstruction": 200})

        meta, params = key_value_schema(self.client)
        self.client.create_collection(self.meta_name, schema=meta, index_params=params, consistency_level="Strong")

        passages = self.client.create_schema(auto_id=False)
        passages.add_field("id", DataType.INT64, is_primary=True)
        passages.add_field("gen", DataType.INT64)
        passages.add_field("source", DataType.VARCHAR, max_length=4096)
        passages.add_field("sha", DataType.VARCHAR, max_length=64)
        passages.add_field("start", DataType.INT64)
        passages.add_field("end", DataType.INT64)
        passages.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX)
        passages.add_field("context", DataType.VARCHAR, max_length=TEXT_MAX)
        passages.add_field("sentences", DataType.JSON)  # [[start, end], ...] in the file's text
        passages.add_field("sentence_stems", DataType.JSON)  # per sentence, its distinct BM25 stems
        passages.add_field("stems", DataType.VARCHAR, max_length=TEXT_MAX, enable_analyzer=True,
                           analyzer_params={"tokenizer": "whitespace"})
        passages.add_field("bm25", DataType.SPARSE_FLOAT_VECTOR)
        passages.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        passages.add_function(Function(name="stems_bm25", function_type=FunctionType.BM25,
                                       input_field_names=["stems"], output_field_names=["bm25"]))
        params = self.client.prepare_index_params()
        params.add_index("vector", index_type=vector_index[0], metric_type="IP", params=vector_index[1])
        params.add_index("bm25", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                         params={"bm25_k1": 1.5, "bm25_b": 0.75})
        self.client.create_collection(self.passages_name, schema=passages, index_params=params, consistency_level="Strong")

        sentences = self.client.create_schema(auto_id=False)
        sentences.add_field("id", DataType.INT64, is_primary=True)
        sentences.add_field("passage", DataType.INT64)
        sentences.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        params = self.client.prepare_index_params()
        params.add_index("vector", index_type=vector_index[0], metric_type="IP", params=vector_index[1])
        self.client.create_collection(self.sentences_name, schema=sentences, index_params=params, consistency_level="Strong")

    def insert(self, gen: int, passages: Sequence[Passage], shas: Mapping[str, str], vectors: np.ndarray,
               sentence_vectors: Sequence[np.ndarray], progress: Callable[[int], None] | None = None) -> None:
        """Insert passages (with their vectors and each passage's sentence vectors) as part of
        generation `gen` (invisible to readers until it is committed)."""
        for lo in range(0, len(passages), INSERT_BATCH):
            part = passages[lo : lo + INSERT_BATCH]
            stems = stems_of([p.embed_text for p in part])
            sentence_texts = [[p.text[a - p.start : b - p.start] for a, b in p.sentences] for p in part]
            flat = stems_of([t for texts in sentence_texts for t in texts])
            rows, sentence_rows, at = [], [], 0
            for i, p in enumerate(part):
                if len(p.sentences) >= SENTENCE_SLOTS:
                    raise RagError(f"a passage of {p.source} has {len(p.sentences)} sentences; the Milvus store holds "
                                   f"at most {SENTENCE_SLOTS - 1} per passage (lower --max-tokens)")
                per_sentence = [sorted(set(s)) for s in flat[at : at + len(p.sentences)]]
                at += len(p.sentences)
                rows.append({"id": p.id, "gen": gen, "source": p.source, "sha": shas[p.source], "start": p.start,
                             "end": p.end, "text": p.text, "context": p.context,
                             "sentences": [list(s) for s in p.sentences], "sentence_stems": per_sentence,
                             "stems": " ".join(stems[i]), "vector": vectors[lo + i].tolist()})
                block = sentence_vectors[lo + i]
                for j in range(len(p.sentences)):
                    sentence_rows.append({"id": p.id * SENTENCE_SLOTS + j, "passage": p.id, "vector": block[j].tolist()})
            self.client.insert(self.passages_name, rows)
            checkpoint("inserting")
            for s in range(0, len(sentence_rows), 2 * INSERT_BATCH):
                self.client.insert(self.sentences_name, sentence_rows[s : s + 2 * INSERT_BATCH])
            if progress:
                progress(len(part))

    def delete_passages(self, expression: str) -> int:
        """Delete the passages (and their sentences) matching a filter; returns how many."""
        ids = [int(r["id"]) for r in self._query_all(self.passages_name, expression, ["id"])]
        for lo in range(0, len(ids), FETCH):
            part = ids[lo : lo + FETCH]
            self.client.delete(self.passages_name, filter=_ids_filter("id", part))
            self.client.delete(self.sentences_name, filter=_ids_filter("passage", part))
        return len(ids)

    def _query_all(self, name: str, expression: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        iterator = self.client.query_iterator(name, batch_size=1000, filter=expression, output_fields=fields)
        try:
            while True:
                batch = iterator.next()
                if not batch:
                    return
                yield from batch
        finally:
            iterator.close()

    def stems_of_generation(self, gen: int) -> Callable[[], Iterator[list[str]]]:
        """A way to read every visible passage's stems (for the lexicon), as often as needed."""
        def read() -> Iterator[list[str]]:
            for row in self._query_all(self.passages_name, f"gen <= {gen}", ["stems"]):
                yield row["stems"].split()
        return read

    def commit(self, gen: int, manifest: Manifest, texts: Mapping[str, str]) -> None:
        """Write generation `gen`'s texts, lexicon and manifest, then make it current."""
        for source, record in manifest.sources.items():
            if self.get_blob_head(f"text/{record.sha256}") is None:
                self.put_blob(f"text/{record.sha256}", texts[source].encode("utf-8"))
        lexicon = lexicon_of(self.stems_of_generation(gen))
        stems = sorted(lexicon.vocab, key=lexicon.vocab.__getitem__)
        self.put_blob(f"lexicon/{gen}", json.dumps({"stems": stems, "df": lexicon.df.tolist(),
                                                     "term_max": lexicon.term_max.tolist(), "n": lexicon.n_docs,
                                                     "avgdl": lexicon.avgdl}).encode("utf-8"))
        checkpoint("manifest")
        self.put_blob(f"manifest/{gen}", json.dumps(manifest.to_json()).encode("utf-8"))
        checkpoint("flushed")
        switch(self.client, self.family, gen)
        checkpoint("switched")

    def get_blob_head(self, name: str) -> int | None:
        head = self.client.get(self.meta_name, ids=[name], output_fields=["value"])
        return int(head[0]["value"]) if head else None

    def clean(self, gen: int, manifest: Manifest | None, between: Callable[[], None] = lambda: None) -> None:
        """Remove what is not part of committed generation `gen`: rows of unfinished builds,
        rows whose file version the manifest no longer lists, old manifests, lexicons and texts
        (`between` runs after the first of these steps)."""
        self.delete_passages(f"gen > {gen}")
        between()
        if manifest is not None:
            for source, shas in self._versions(gen).items():
                record = manifest.sources.get(source)
                stale = shas - {record.sha256} if record else shas
                if stale:
                    self.delete_passages(f"source == {json.dumps(source)} and sha in {_quoted(stale)}")
        keep_texts = {f"text/{r.sha256}" for r in (manifest.sources.values() if manifest else [])}
        heads = [r["key"] for r in self._query_all(self.meta_name, 'key != ""', ["key"]) if "#" not in r["key"]]
        for key in heads:
            kind, _, rest = key.partition("/")
            old_generation = kind in ("manifest", "lexicon") and rest.isdigit() and int(rest) < gen - 1
            if old_generation or (kind == "text" and key not in keep_texts):
                self.delete_blob(key)

    def _versions(self, gen: int) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for row in self._query_all(self.passages_name, f"gen <= {gen}", ["source", "sha"]):
            found.setdefault(row["source"], set()).add(row["sha"])
        return found

    def passages_of(self, sources: Collection[str], gen: int) -> list[dict[str, Any]]:
        """Id, source, file hash and sentence spans of the visible passages of `sources`."""
        if not sources:
            return []
        return list(self._query_all(self.passages_name, f"gen <= {gen} and source in {_quoted(sources)}",
                                    ["id", "source", "sha", "sentences"]))
