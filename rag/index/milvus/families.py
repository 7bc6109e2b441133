"""Which Milvus collections hold the live index, and the one write that switches readers.

A full build (`--full`, or a change of model, chunking, precision or model-copy recipe) never
touches the collections readers use: it writes a new *family* of three collections beside
them, named after the generation it starts,

    <name>__passages__g<N>    <name>__sentences__g<N>    <name>__meta__g<N>

and then switches readers to it by one upsert of the pointer row in `<name>__live`:
{"family": N, "gen": G}. An update writes into the live family and switches with the same
row (the family unchanged, the generation one up). Milvus collection aliases would do this
switch on a server, but Milvus Lite does not implement them, so the pointer row serves both.

Collections of a family the pointer does not name are what a killed full build left, or the
family a finished one replaced; the next build drops them (`drop_other_families`). An index
written before families existed (`<name>`, `<name>_sentences`, `<name>_meta`, with `current`
in its meta collection) is read as the family numbered None, updated in place, and replaced
by the first full build like any other family.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rag.errors import RagError

POINTER = "current"  # the pointer row's key, in <name>__live and in an older index's meta


@dataclass(frozen=True)
class Family:
    """The three collections of one full build of the index named `collection`."""

    collection: str
    number: int | None  # the generation that created it; None for the layout before families

    @property
    def passages(self) -> str:
        return self.collection if self.number is None else f"{self.collection}__passages__g{self.number}"

    @property
    def sentences(self) -> str:
        return f"{self.collection}_sentences" if self.number is None else f"{self.collection}__sentences__g{self.number}"

    @property
    def meta(self) -> str:
        return f"{self.collection}_meta" if self.number is None else f"{self.collection}__meta__g{self.number}"

    @property
    def names(self) -> tuple[str, str, str]:
        return (self.passages, self.sentences, self.meta)


def pointer_collection(collection: str) -> str:
    return f"{collection}__live"


def is_missing_collection(exc: BaseException) -> bool:
    """Whether a pymilvus error says a collection is not there (a family dropped under a reader)."""
    message = str(exc).lower()
    return getattr(exc, "code", None) == 100 or "collection not found" in message or "can't find collection" in message


def _pointer_row(client: Any, name: str) -> str | None:
    if not client.has_collection(name):
        return None
    rows = client.get(name, ids=[POINTER], output_fields=["value"])
    return str(rows[0]["value"]) if rows else None


def read_live(client: Any, collection: str) -> tuple[Family, int] | None:
    """The live family and its committed generation, or None when the index does not exist."""
    value = _pointer_row(client, pointer_collection(collection))
    if value is not None:
        try:
            record = json.loads(value)
            return Family(collection, int(record["family"])), int(record["gen"])
        except (KeyError, TypeError, ValueError):
            raise RagError(f"the Milvus collection '{collection}' is damaged (its pointer row {value!r} is not "
                           "readable); rebuild it with: rag index --full") from None
    legacy = Family(collection, None)
    value = _pointer_row(client, legacy.meta)
    return None if value is None else (legacy, int(value))


def key_value_schema(client: Any) -> tuple[Any, Any]:
    """The schema (and index) of a key/value collection: the pointer and each family's meta."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False)
    schema.add_field("key", DataType.VARCHAR, max_length=512, is_primary=True)
    schema.add_field("value", DataType.VARCHAR, max_length=65_535)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector in every collection
    params = client.prepare_index_params()
    params.add_index("v", index_type="FLAT", metric_type="L2")
    return schema, params


def switch(client: Any, family: Family, gen: int) -> None:
    """Make generation `gen` of `family` the one readers open: one upsert of one row."""
    if family.number is None:  # an index from before families keeps its own pointer
        client.upsert(family.meta, [{"key": POINTER, "value": str(gen), "v": [0.0, 0.0]}])
        return
    name = pointer_collection(family.collection)
    if not client.has_collection(name):
        schema, params = key_value_schema(client)
        client.create_collection(name, schema=schema, index_params=params, consistency_level="Strong")
    value = json.dumps({"family": family.number, "gen": gen})
    client.upsert(name, [{"key": POINTER, "value": value, "v": [0.0, 0.0]}])


def families_present(client: Any, collection: str) -> dict[int | None, list[str]]:
    """Every family of `collection` that has at least one collection, with those collections."""
    pattern = re.compile(rf"{re.escape(collection)}__(?:passages|sentences|meta)__g(\d+)")
    found: dict[int | None, list[str]] = {}
    names = set(client.list_collections())
    for name in sorted(names):
        match = pattern.fullmatch(name)
        if match:
            found.setdefault(int(match.group(1)), []).append(name)
    legacy = Family(collection, None)
    if legacy.meta in names and _pointer_row(client, legacy.meta) is not None:
        found[None] = [n for n in legacy.names if n in names]
    return found


def drop_other_families(client: Any, keep: Family, between: Callable[[], None] = lambda: None) -> list[str]:
    """Drop every collection of the index's families but `keep`'s (readers of a dropped family
    reopen the live one); `between` runs after each drop. Returns the dropped names."""
    dropped: list[str] = []
    for number, names in families_present(client, keep.collection).items():
        if number == keep.number:
            continue
        for name in names:
            client.drop_collection(name)
            dropped.append(name)
            between()
    return dropped
