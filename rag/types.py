"""The pipeline's data, in one place: seeds/ -> Document -> Chunk -> Passage -> index/ -> Hit.

Every type is a frozen dataclass so that stages can pass values without copying or fear of
mutation. Offsets are always character offsets into the source file's text as read (UTF-8
decoded, newlines untouched), so `document.text[start:end] == passage.text` holds everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np

FEATURES = ("sentence", "passage", "negation", "missing", "unseen_share", "score_gap", "coverage", "missing_name")


@dataclass(frozen=True)
class AbstentionModel:
    """support = 1 / (1 + exp(-(bias + weights . features))); answered when support >= threshold."""

    weights: tuple[float, ...]
    bias: float
    threshold: float
    fitted_on: str  # what the weights and threshold were fitted on, in words
    features: tuple[str, ...] = FEATURES
    calibrated: bool = False  # fitted on this index's own questions (rag eval --calibrate)
    strict_threshold: float | None = None  # the operating point that abstains when in doubt

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.features):
            raise ValueError(f"weights has {len(self.weights)} values for {len(self.features)} features")
        unknown = set(self.features) - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown abstention feature(s) {sorted(unknown)}; known: {', '.join(FEATURES)}")
        if not all(math.isfinite(v) for v in (*self.weights, self.bias)):
            raise ValueError("abstention weights and bias must be finite numbers")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.strict_threshold is not None and not 0.0 <= self.strict_threshold <= 1.0:
            raise ValueError(f"strict_threshold must be between 0 and 1, got {self.strict_threshold}")

    def threshold_for(self, abstain: str) -> float:
        """The support an answer needs at an operating point: `lenient` is `threshold`; `strict`
        is `strict_threshold` (never below `threshold`), or `threshold` when none was fitted."""
        if abstain == "strict" and self.strict_threshold is not None:
            return max(self.threshold, self.strict_threshold)
        return self.threshold

    def support(self, features: np.ndarray) -> np.ndarray:
        """Support of each row of `features` (columns in FEATURES order)."""
        columns = [FEATURES.index(f) for f in self.features]
        # a row-wise sum, not a matrix product: a row's support must not depend on how many
        # rows are scored with it (BLAS may sum a batch in another order)
        z = self.bias + (np.asarray(features, dtype=np.float64)[:, columns] * np.asarray(self.weights)).sum(axis=1)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "weights": [round(w, 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "threshold": round(self.threshold, 6),
            "fitted_on": self.fitted_on,
            "calibrated": self.calibrated,
            **({"strict_threshold": round(self.strict_threshold, 6)} if self.strict_threshold is not None else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AbstentionModel:
        """The model from its JSON; a missing or mistyped field is a ValueError naming it."""
        weights, features = data.get("weights"), data.get("features")
        if not isinstance(weights, list) or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
            raise ValueError("field 'abstention.weights' must be a list of numbers")
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise ValueError("field 'abstention.features' must be a list of feature names")
        for name, kinds in (("bias", (int, float)), ("threshold", (int, float)), ("fitted_on", (str,)), ("calibrated", (bool,)),
                            ("strict_threshold", (int, float))):
            if name in data and (not isinstance(data[name], kinds) or (isinstance(data[name], bool) and bool not in kinds)):
                raise ValueError(f"field 'abstention.{name}' has the wrong type")
        return cls(
            weights=tuple(float(w) for w in weights),
            bias=float(data.get("bias", 0.0)),
            threshold=float(data["threshold"]) if "threshold" in data else 0.5,
            fitted_on=str(data.get("fitted_on", "")),
            features=tuple(features),
            calibrated=bool(data.get("calibrated", False)),
            strict_threshold=float(data["strict_threshold"]) if "strict_threshold" in data else None,
        )

    def with_threshold(self, threshold: float) -> AbstentionModel:
        return replace(self, threshold=float(threshold))


@dataclass(frozen=True)
class QueryTerms:
    """The question's content words, one per distinct stem, in the order they appear."""

    words: tuple[str, ...]  # as written in the question
    stems: tuple[str, ...]
    ids: tuple[int, ...]  # BM25 term id of each stem, -1 where the index has never seen it
    negated: bool  # the question holds "not", "never", "n't"...
    names: tuple[bool, ...] = ()  # per word: it looks like a name or a figure (capitalised
    # after the question's first word, or holding a digit)

    @cached_property
    def known(self) -> np.ndarray:
        """Sorted unique term ids the index has seen (int64)."""
        return np.unique(np.array([i for i in self.ids if i >= 0], dtype=np.int64))

    @property
    def unseen(self) -> int:
        return sum(1 for i in self.ids if i < 0)


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
