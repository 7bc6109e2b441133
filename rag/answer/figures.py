"""Figures in a statement: counts, times and dates, read from the words of a source.

Pure functions of text. A figure keeps its exact span, so the page can mark it and a reader
can check it; its value is an interval, so that "77", "77-100", "over seventy" and "about 100"
can be compared ("no casualties" is a count of zero). Nothing here writes text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Literal

from rag.answer.types import Figure

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
# vague multitudes: "dozens" of people is at least two dozen, "hundreds" at least two hundred
_PLURALS = {"dozens": (24, 144), "scores": (40, 200), "hundreds": (200, 999), "thousands": (2000, 999_999)}
_NUMBER_WORD = "|".join(sorted([*_UNITS, *_TENS, "hundred", "thousand", "million", "dozen", "a", "an", "few",
                                "several", "and"], key=len, reverse=True))
_WORDS = rf"(?:(?:{'|'.join(sorted([*_UNITS, *_TENS], key=len, reverse=True))})(?:[-\s](?:{_NUMBER_WORD}))*|(?:a|an|a\s+few|several)\s+(?:dozen|hundred|thousand|million)(?:[-\s](?:{_NUMBER_WORD}))*)"
_DIGITS = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_QUALIFIER = (r"(?:more\s+than|over|at\s+least|above|in\s+excess\s+of|fewer\s+than|less\s+than|under|up\s+to|nearly|"
              r"almost|about|around|approximately|roughly|some|an\s+estimated|estimated|at\s+most)")
_COUNT = re.compile(
    rf"(?<![\w.,:-])(?:(?P<qual>{_QUALIFIER})\s+)?"
    rf"(?:(?P<lo>{_DIGITS})\s*(?:[-–—]|to)\s*(?P<hi>{_DIGITS})|(?P<num>{_DIGITS})|(?P<words>{_WORDS})|(?P<plural>{'|'.join(_PLURALS)}))"
    r"(?![\w:]|\.\d|,\d{3})",
    re.IGNORECASE,
)
_NONE = re.compile(
    r"\b(?:no(?:\s+confirmed)?\s+(?:reports?\s+of\s+)?(?:casualties|deaths|fatalities|injuries|victims|one\s+(?:was\s+)?(?:killed|hurt|injured))"
    r"|nobody\s+(?:was\s+)?(?:killed|hurt|injured|died)|no\s+one\s+(?:was\s+)?(?:killed|hurt|injured)|none\s+(?:were|was)\s+(?:killed|hurt|injured))\b",
    re.IGNORECASE,
)
_TIME = re.compile(
    r"\b(?:(?:at\s+)?(?:around|about)\s+)?(?P<h>[01]?\d|2[0-3])(?::(?P<m>[0-5]\d))?\s*(?P<ap>a\.?m\.?|p\.?m\.?)(?!\w)"
    r"|\b(?:(?:at\s+)?(?:around|about)\s+)?(?P<h24>[01]\d|2[0-3]):(?P<m24>[0-5]\d)\b",
    re.IGNORECASE,
)
_PARTS = {"dawn": (300, 420), "early morning": (240, 540), "morning": (300, 720), "midday": (690, 810), "noon": (690, 810),
          "afternoon": (720, 1080), "evening": (1020, 1320), "night": (1200, 1740), "midnight": (1410, 1470)}
_PART = re.compile(r"\b(?:early\s+morning|dawn|midday|noon|afternoon|evening|midnight|morning|night)\b", re.IGNORECASE)
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}\s+(?:{_MONTHS})(?:\s+\d{{4}})?|(?:{_MONTHS})\s+\d{{1,2}}(?:,\s*\d{{4}})?)\b"
    r"|\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"^(?:1[5-9]|20)\d\d$")
_APPROX = 0.1  # "about 100" covers 90..110


def words_value(text: str) -> tuple[float, float] | None:
    """The number a phrase in words says, as (low, high): "seventy-seven" (77, 77), "a few
    dozen" (24, 60), "several hundred" (300, 900), "two thousand" (2000, 2000)."""
    tokens = [t for t in re.split(r"[-\s]+", text.lower()) if t and t != "and"]
    if not tokens:
        return None
    if tokens[0] in ("a", "an") and len(tokens) >= 2 and tokens[1] == "few":
        tokens = ["few", *tokens[2:]]
    if tokens[0] in ("few", "several") and len(tokens) >= 2:
        unit = 12 if tokens[1] == "dozen" else _SCALES.get(tokens[1])
        if unit is None:
            return None
        return (2.0 * unit, 5.0 * unit) if tokens[0] == "few" else (3.0 * unit, 9.0 * unit)
    total, current = 0, 0
    for token in tokens:
        if token in ("a", "an"):
            current = 1
        elif token in _UNITS:
            current += _UNITS[token]
        elif token in _TENS:
            current += _TENS[token]
        elif token == "dozen":
            current = (current or 1) * 12
        elif token in _SCALES:
            scale = _SCALES[token]
            if scale == 100:
                current = (current or 1) * 100
            else:
                total += (current or 1) * scale
                current = 0
        else:
            return None
    value = float(total + current)
    return value, value


def _interval(qualifier: str | None, low: float, high: float) -> tuple[float | None, float | None]:
    q = " ".join((qualifier or "").lower().split())
    if q in ("more than", "over", "at least", "above", "in excess of"):
        return low, None
    if q in ("fewer than", "less than", "under", "up to", "nearly", "almost", "at most"):
        return 0.0, high
    if q in ("about", "around", "approximately", "roughly", "some", "an estimated", "estimated"):
        return low * (1 - _APPROX), high * (1 + _APPROX)
    return low, high


def shifted(figures: list[Figure], offset: int) -> tuple[Figure, ...]:
    """The figures with spans moved by `offset` (from a sentence's text into its file's)."""
    return tuple(replace(f, start=f.start + offset, end=f.end + offset) for f in figures)


# Where a count can begin: a digit, or one of these words (first words of the qualifiers,
# numbers in words, vague multitudes). The big alternation of _COUNT is only tried there:
# trying it at every character was most of the cost of reading a sentence.
_COUNT_LEADS = frozenset([
    "more", "over", "at", "above", "in", "fewer", "less", "under", "up", "nearly", "almost", "about", "around",
    "approximately", "roughly", "some", "an", "estimated", "a", "several", *_UNITS, *_TENS, *_PLURALS,
])
_WORD_START = re.compile(r"(?<![\w.,:-])\w+")  # words that start where _COUNT's look-behind allows
_DIGIT = re.compile(r"\d")
_NOT_A_COUNT_AFTER = re.compile(
    r"\s*(?:percent|per\s+cent|%|a\.?m\b|p\.?m\b|km|kilomet|mile|hours?|minutes?|days?|weeks?|months?|years?)")
_MONTH_AFTER = re.compile(rf"\s+(?:{_MONTHS})\b")
_ONE = re.compile(r"(?:a|an|one)", re.IGNORECASE)
_APPROX_TIME = re.compile(r"(?:at\s+)?(?:around|about)", re.IGNORECASE)
_PART_WORDS = ("dawn", "midday", "noon", "evening", "morning", "night")  # each part of the day holds one
_DATE_WORDS = (*_MONTHS.split("|"), "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# Text that is not prose: a URL, an e-mail address, markup, code in backticks, or a token holding
# characters prose does not use (= _ { } [ ] < > \ |) or a letter directly before a digit (an
# identifier: A320, mp3, G7). A digit in there is part of a name, never a figure.
_NOT_PROSE = re.compile(r"(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|<[^<>]*>|`[^`]*`"
                        r"|[^\s=_{}\[\]<>\\|]*[=_{}\[\]<>\\|][^\s]*|\S*[A-Za-z]\d\S*")
_MAYBE_NOT_PROSE = re.compile(r"[=_{}\[\]<>\\|`@]|www\.|://|[A-Za-z]\d")


def prose_only(text: str, found: list[Figure]) -> list[Figure]:
    """`found` without the figures that lie in text that is not prose (_NOT_PROSE)."""
    if not found or not _MAYBE_NOT_PROSE.search(text):
        return found
    spans = [(m.start(), m.end()) for m in _NOT_PROSE.finditer(text)]
    return [f for f in found if not any(a < f.end and f.start < b for a, b in spans)]


def count_matches(text: str) -> list[re.Match[str]]:
    """The matches of the count pattern in `text`, exactly as its `finditer` gives them, the
    pattern tried only where a count can begin (in ASCII text: the pattern's case-blind
    matching knows letters, such as the dotless i, that `casefold` does not)."""
    if not text.isascii():
        return list(_COUNT.finditer(text))
    found: list[re.Match[str]] = []
    end = 0
    for word in _WORD_START.finditer(text):
        start = word.start()
        if start < end or not (word.group()[0].isdigit() or word.group().casefold() in _COUNT_LEADS):
            continue
        m = _COUNT.match(text, start)
        if m is not None:
            found.append(m)
            end = m.end()
    return found


def _holds(folded: str, words: tuple[str, ...]) -> bool:
    """Whether case-folded text may hold one of `words` (any text that is not ASCII may)."""
    return not folded.isascii() or any(w in folded for w in words)


def counts(text: str) -> list[Figure]:
    """Counts in `text`: digits, ranges, numbers in words, vague multitudes and "no casualties"
    (zero); years, times, dates and percentages are not counts."""
    found: list[Figure] = []
    for m in count_matches(text):
        after = text[m.end() : m.end() + 12].lower()
        if _NOT_A_COUNT_AFTER.match(after):
            continue
        if m.group("num") and _YEAR.match(m.group("num").replace(",", "")) and not m.group("qual"):
            continue
        if _MONTH_AFTER.match(after):
            continue  # "17 September"
        if m.group("lo"):
            if _YEAR.match(m.group("lo")) and _YEAR.match(m.group("hi")):
                continue  # "from 2021 to 2023"
            lo, hi = float(m.group("lo").replace(",", "")), float(m.group("hi").replace(",", ""))
        elif m.group("num"):
            lo = hi = float(m.group("num").replace(",", ""))
        elif m.group("plural"):
            lo, hi = (float(v) for v in _PLURALS[m.group("plural").lower()])
        else:
            value = words_value(m.group("words"))
            if value is None:
                continue
            lo, hi = value
            if _ONE.fullmatch(m.group("words")):
                continue  # "a" and "one" are rarely figures in news text ("one of the...")
        low, high = _interval(m.group("qual"), lo, hi)
        found.append(Figure("count", m.start(), m.end(), m.group(0), low, high))
    if "no" in text.casefold():  # every "no casualties" phrase starts with "no"
        for m in _NONE.finditer(text):
            found.append(Figure("count", m.start(), m.end(), m.group(0), 0.0, 0.0))
    return prose_only(text, sorted(found, key=lambda f: f.start))


def times(text: str) -> list[Figure]:
    """Clock times ("05:00", "around 4am") and parts of the day ("at dawn"), in minutes after
    midnight, and dates ("17 September 2024", "Tuesday")."""
    found: list[Figure] = []
    folded = text.casefold()
    for m in _TIME.finditer(text) if _DIGIT.search(text) else ():
        if m.group("h24") is not None:
            minutes = int(m.group("h24")) * 60 + int(m.group("m24"))
        else:
            hour = int(m.group("h")) % 12 + (12 if m.group("ap").lower().startswith("p") else 0)
            minutes = hour * 60 + int(m.group("m") or 0)
        approx = 15 if _APPROX_TIME.match(m.group(0)) else 0
        found.append(Figure("time", m.start(), m.end(), m.group(0), float(minutes - approx), float(minutes + approx)))
    for m in _PART.finditer(text) if _holds(folded, _PART_WORDS) else ():
        low, high = _PARTS[" ".join(m.group(0).lower().split())]
        found.append(Figure("time", m.start(), m.end(), m.group(0), float(low), float(high)))
    for m in _DATE.finditer(text) if _holds(folded, _DATE_WORDS) else ():
        found.append(Figure("date", m.start(), m.end(), m.group(0), None, None))
    found.sort(key=lambda f: (f.start, -f.end))
    kept: list[Figure] = []
    for f in found:  # "early morning" wins over the "morning" inside it
        if not kept or f.start >= kept[-1].end:
            kept.append(f)
    return prose_only(text, kept)


_COUNT_QUESTION = re.compile(
    r"\bhow\s+(?:many|much)\b|\b(?:what|which)\s+(?:was\s+|is\s+)?(?:the\s+)?(?:number|toll|figure|count|total)\b|\bdeath\s+toll\b|\btoll\b",
    re.IGNORECASE,
)
_TIME_QUESTION = re.compile(r"\bwhen\b|\bwhat\s+(?:time|day|date|hour)\b|\bwhich\s+(?:day|date)\b|\bat\s+what\s+time\b", re.IGNORECASE)


def asked_kind(question: str) -> Literal["count", "time"] | None:
    """The kind of figure a question asks for: a count ("how many", "what toll"), a time or
    date ("when", "what time"), or none."""
    if _COUNT_QUESTION.search(question):
        return "count"
    if _TIME_QUESTION.search(question):
        return "time"
    return None


def asked_reader(question: str) -> Callable[[str], list[Figure]] | None:
    """What reads, from a statement, the figures of the kind `question` asks for (None when it
    asks for none), leaving out figures the question itself states ("How many died in the
    2015 attack?" does not ask for 2015). The question is read once, statements many times."""
    kind = asked_kind(question)
    if kind is None:
        return None
    read = counts if kind == "count" else times
    stated = {f.low for f in read(question) if f.low is not None}
    return lambda statement: [f for f in read(statement) if f.low is None or f.low not in stated or f.high != f.low]


def _overlap(a: Figure, b: Figure) -> bool:
    if a.kind != b.kind:
        return True  # a date and a time of day do not contradict each other
    if a.low is None or b.low is None:
        return a.text.lower() == b.text.lower() if a.kind == "date" else True
    a_high = float("inf") if a.high is None else a.high
    b_high = float("inf") if b.high is None else b.high
    return a.low <= b_high and b.low <= a_high


def agree(a: list[Figure], b: list[Figure]) -> bool:
    """Two statements' figures agree when they share a compatible figure (or one has none)."""
    if not a or not b:
        return True
    return any(_overlap(x, y) for x in a for y in b)


def differ(statements: list[list[Figure]]) -> bool:
    """Whether some two figure-bearing statements give figures that cannot both be right."""
    with_figures = [s for s in statements if s]
    return any(not agree(a, b) for i, a in enumerate(with_figures) for b in with_figures[i + 1 :])
