"""The pipeline's data, in one place: seeds/ -> Document -> Chunk -> Passage -> index/ -> Hit.

Every type is a frozen dataclass so that stages can pass values without copying or fear of
mutation. Offsets are always character offsets into the source file's text as read (UTF-8
decoded, newlines untouched), so `document.text[start:end] == passage.text` holds everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .abstention import AbstentionModel

SegmentKind = Literal["prose", "list"]
Span = tuple[int, int]  # [start, end) character offsets into a source's text
FigureKind = Literal["count", "time", "date"]


_KINDS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,),
                                      "dict": (dict,), "list": (list,)}


def field_of(data: object, name: str, kind: str, default: Any = ...) -> Any:
    """`data[name]`, checked to be of `kind` ("int", "float", "str", "bool", "dict", "list");
    a ValueError names the field, so that a damaged file is reported, never half-read."""
    if not isinstance(data, dict):
        raise ValueError(f"expected an object, got {type(data).__name__}")
    if name not in data:
        if default is ...:
            raise ValueError(f"field '{name}' is missing")
        return default
    value = data[name]
    wrong_bool = isinstance(value, bool) and kind in ("int", "float")
    if wrong_bool or not isinstance(value, _KINDS[kind]):
        raise ValueError(f"field '{name}' must be {kind}, got {json_type(value)}")
    return float(value) if kind == "float" else value


def json_type(value: object) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    """Raise a ValueError naming the parameter when `value` is not an int in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bound}, got {value}")


@dataclass(frozen=True)
class Segment:
    """A run of article text with only whitespace inside its gaps, within one section.

    Passages never cross a segment boundary, so furniture removed between two segments can
    never reappear inside a passage's span. `context` (title and section heading) is given to
    the encoder with each passage but is not part of the passage's text or offsets.
    """

    start: int
    end: int
    kind: SegmentKind
    context: str = ""


@dataclass(frozen=True)
class Document:
    """One source file, read and cleaned."""

    id: str  # path relative to the sources folder, with forward slashes
    text: str  # the whole file text as read; offsets refer to it
    title: str
    sha256: str  # of the file's bytes
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class ChunkingConfig:
    """How documents are cut into passages; recorded in the manifest."""

    max_tokens: int = 96  # word-pieces of passage text, excluding the context prefix
    overlap_sentences: int = 1
    max_context_tokens: int = 32

    def __post_init__(self) -> None:
        _check_int("max_tokens", self.max_tokens, 8, 4096)
        _check_int("overlap_sentences", self.overlap_sentences, 0, 8)
        _check_int("max_context_tokens", self.max_context_tokens, 0, 512)

    def to_dict(self) -> dict[str, int]:
        return {
            "max_tokens": self.max_tokens,
            "overlap_sentences": self.overlap_sentences,
            "max_context_tokens": self.max_context_tokens,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkingConfig:
        return cls(**{name: field_of(data, name, "int") for name in ("max_tokens", "overlap_sentences", "max_context_tokens")})


@dataclass(frozen=True)
class Chunk:
    """A passage before it has an id: a span of one document, cut on sentence boundaries."""

    source: str
    start: int
    end: int
    text: str
    context: str
    sentences: tuple[tuple[int, int], ...]  # absolute spans inside [start, end], in order

    @property
    def embed_text(self) -> str:
        """What the encoder reads: the context line, then the passage text."""
        return f"{self.context}\n{self.text}" if self.context else self.text

    @property
    def embed_offset(self) -> int:
        """Where the passage text starts inside `embed_text`."""
        return len(self.context) + 1 if self.context else 0


@dataclass(frozen=True)
class Passage(Chunk):
    """A stored chunk with its permanent int64 id."""

    id: int
    sentence_row: int  # row of this passage's first sentence in the sentence-vector matrix

    @classmethod
    def from_chunk(cls, chunk: Chunk, id: int, sentence_row: int) -> Passage:
        return cls(**{f: getattr(chunk, f) for f in _CHUNK_FIELDS}, id=id, sentence_row=sentence_row)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "context": self.context,
            "sentences": [list(s) for s in self.sentences],
            "sentence_row": self.sentence_row,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Passage:
        sentences = field_of(data, "sentences", "list")
        if not all(isinstance(s, list) and len(s) == 2 and all(type(v) is int for v in s) for s in sentences):
            raise ValueError("field 'sentences' must be a list of [start, end] pairs")
        passage = cls(
            id=field_of(data, "id", "int"),
            source=field_of(data, "source", "str"),
            start=field_of(data, "start", "int"),
            end=field_of(data, "end", "int"),
            text=field_of(data, "text", "str"),
            context=field_of(data, "context", "str"),
            sentences=tuple((a, b) for a, b in sentences),
            sentence_row=field_of(data, "sentence_row", "int"),
        )
        if passage.end - passage.start != len(passage.text) or not passage.sentences:
            raise ValueError("the passage's span does not match its text")
        return passage


_CHUNK_FIELDS = ("source", "start", "end", "text", "context", "sentences")


@dataclass(frozen=True)
class SourceRecord:
    """What the manifest remembers of one source file."""

    sha256: str
    title: str
    passages: int

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "title": self.title, "passages": self.passages}


@dataclass(frozen=True)
class Manifest:
    """The index's description of itself: how, from what and with what it was built."""

    format_version: int
    model: str
    dimension: int
    max_seq_length: int
    chunking: ChunkingConfig
    sources: dict[str, SourceRecord]
    built_at: str
    build_seconds: float
    versions: dict[str, str]
    passages: int
    sentences: int
    next_id: int
    faiss_index: str
    abstention: AbstentionModel  # how support is computed and the threshold answers must reach
    precision: str = "fp32"  # of the model copy that encoded the passages (questions must match)
    extra: dict[str, Any] = field(default_factory=dict)
    onnx: dict[str, Any] | None = None  # the verified ONNX copy of the model in onnx/, if any

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "model": self.model,
            "dimension": self.dimension,
            "max_seq_length": self.max_seq_length,
            "chunking": self.chunking.to_dict(),
            "sources": {k: v.to_json() for k, v in sorted(self.sources.items())},
            "built_at": self.built_at,
            "build_seconds": self.build_seconds,
            "versions": self.versions,
            "passages": self.passages,
            "sentences": self.sentences,
            "next_id": self.next_id,
            "faiss_index": self.faiss_index,
            "abstention": self.abstention.to_json(),
            "precision": self.precision,
            "extra": self.extra,
            "onnx": self.onnx,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """A manifest from its JSON; a missing or mistyped field is a ValueError naming it."""
        sources = {
            name: SourceRecord(field_of(r, "sha256", "str"), field_of(r, "title", "str"), field_of(r, "passages", "int"))
            for name, r in field_of(data, "sources", "dict").items()
        }
        onnx = field_of(data, "onnx", "dict", None) if data.get("onnx") is not None else None
        return cls(
            format_version=field_of(data, "format_version", "int"),
            model=field_of(data, "model", "str"),
            dimension=field_of(data, "dimension", "int"),
            max_seq_length=field_of(data, "max_seq_length", "int"),
            chunking=ChunkingConfig.from_dict(field_of(data, "chunking", "dict")),
            sources=sources,
            built_at=field_of(data, "built_at", "str"),
            build_seconds=field_of(data, "build_seconds", "float"),
            versions={str(k): str(v) for k, v in field_of(data, "versions", "dict").items()},
            passages=field_of(data, "passages", "int"),
            sentences=field_of(data, "sentences", "int"),
            next_id=field_of(data, "next_id", "int"),
            faiss_index=field_of(data, "faiss_index", "str"),
            abstention=AbstentionModel.from_json(field_of(data, "abstention", "dict")),
            precision=field_of(data, "precision", "str", "fp32"),
            extra=field_of(data, "extra", "dict", {}),
            onnx=onnx,
        )


@dataclass(frozen=True)
class Hit:
    """One ranked, cited passage of an answer."""

    rank: int
    score: float
    source: str
    title: str
    start: int
    end: int
    text: str
    highlight: tuple[int, int]  # the supporting sentence, as offsets into the source file
    passage_id: int
    support: float = 0.0  # how likely this passage answers the question (rag.abstention)
    features: tuple[float, ...] = ()  # the evidence `support` was computed from (not in JSON)

    def to_json(self) -> dict[str, Any]:
        return {"rank": self.rank, "score": round(self.score, 6), "support": round(self.support, 4), **_cited(self)}


def _cited(item: Hit | Statement) -> dict[str, Any]:
    """The citation fields of a hit or a statement, as JSON, in one order for both."""
    return {"source": item.source, "title": item.title, "start": item.start, "end": item.end, "text": item.text,
            "highlight": [item.highlight[0], item.highlight[1]]}


@dataclass(frozen=True)
class Figure:
    """A figure in a source's words (a count, a time of day, a date): its exact span and the
    interval it states (counts: how many; times: minutes after midnight; dates: no value)."""

    kind: FigureKind
    start: int
    end: int
    text: str
    low: float | None
    high: float | None  # None above a low: open-ended ("over seventy")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "end": self.end, "text": self.text, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Statement:
    """What one source says in answer to a question: its best supporting sentence, cited."""

    source: str
    title: str
    start: int
    end: int
    text: str  # == the source's text[start:end]
    highlight: tuple[int, int]  # the part that supports the question (here the whole sentence)
    score: float  # its support, as a hit's
    figures: tuple[Figure, ...] = ()  # figures of the kind the question asks for, offsets in the file
    group: int = 0  # statements of one group say the same thing
    also_reported_by: tuple[str, ...] = ()  # the other sources of its group

    def to_json(self) -> dict[str, Any]:
        return {
            **_cited(self),
            "score": round(self.score, 4),
            "figures": [f.to_json() for f in self.figures],
            "group": self.group,
            "also_reported_by": list(self.also_reported_by),
        }


@dataclass(frozen=True)
class Answer:
    """The result of one question: ranked hits, and whether the sources answer it at all."""

    question: str
    answered: bool  # support reached the threshold
    hits: tuple[Hit, ...]
    support: float = 0.0  # the best hit's support
    threshold: float = 0.5  # the index's abstention threshold
    missing: tuple[str, ...] = ()  # question words that no shown passage contains
    by_source: tuple[Statement, ...] = ()  # each source with evidence, best first
    figures_differ: bool = False  # the statements give figures that cannot all be right
    changed_sources: tuple[str, ...] = ()  # cited files that changed on disk since the index was built

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answered": self.answered,
            "support": round(self.support, 4),
            "threshold": round(self.threshold, 4),
            "missing": list(self.missing),
            "hits": [h.to_json() for h in self.hits],
            "by_source": [s.to_json() for s in self.by_source],
            "figures_differ": self.figures_differ,
            "changed_sources": list(self.changed_sources),
        }
