"""Stage 5e', the "not found in these passages" line: question words the shown passages lack,
less the words that are not content and the words whose meaning the passages carry.

Pure functions of words, stems and texts. The line is for the reader, so it leaves out (1) the
question's frame that the question stopwords do not already drop ("how many", "how much",
"get", "happen"...), which a reader learns to ignore, and (2) a word of a small synonym table
for what figure questions ask about (deaths, injuries, when something began or ended) when a
shown passage holds another word of its group ("died" is not missing from a passage that says
"were killed"). It never hides a word that looks like a name or a figure.
Measured by benchmarks/missing_line.py (README, "Command line").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from rag.index import WORD

# The question's frame: words that carry the kind of question, not its content.
FRAME_WORDS = frozenset(
    """many much get gets got getting gotten happen happens happened happening take takes took taken make makes
    made say says said tell tells told know knows knew known go goes went gone come comes came exactly actually
    really ever also still yet anyone anybody someone somebody anything something everyone everything thing
    things kind sort type way ways give gives gave given roughly approximately""".split()
)

# What a figure question asks about, in the words news reports use for it.
SYNONYMS: tuple[frozenset[str], ...] = (
    frozenset("""die died dies dying dead death deaths killed kill kills killing toll lives fatalities
        perished""".split()),
    frozenset("injured injure injuries injury wounded wound wounds hurt casualties".split()),
    frozenset("began begin begins beginning start started starts starting launched".split()),
    frozenset("ended end ends ending finished stopped".split()),
)


def frame_words(words: Sequence[str]) -> set[int]:
    """Positions of the question's frame words (lower-cased comparison)."""
    return {i for i, w in enumerate(words) if w.lower() in FRAME_WORDS}


def carried(word: str, stems_present: set[str], stem: Callable[[str], str]) -> bool:
    """Whether a shown passage holds a word of `word`'s synonym group (by stem)."""
    lowered = word.lower()
    for group in SYNONYMS:
        if lowered in group:
            return any(stem(other) in stems_present for other in group if other != lowered)
    return False


def stems_of(texts: Iterable[str], stem: Callable[[str], str]) -> set[str]:
    """Every stem in `texts`, cut as BM25 cuts words."""
    return {stem(w) for text in texts for w in WORD.findall(text.lower())}


def shown_missing(missing: Sequence[str], names: Sequence[bool], texts: Sequence[str],
                  stem: Callable[[str], str]) -> tuple[str, ...]:
    """`missing` (words no shown passage holds, with `names[i]` saying a word looks like a name
    or figure) less the frame and the words a shown passage carries by a synonym."""
    frame = frame_words(missing)
    if not any(w.lower() in g for w in missing for g in SYNONYMS):
        return tuple(w for i, w in enumerate(missing) if i not in frame or names[i])
    present = stems_of(texts, stem)
    return tuple(w for i, w in enumerate(missing)
                 if names[i] or (i not in frame and not carried(w, present, stem)))
