"""Figures read from a statement: counts in digits and words, ranges, vague and zero counts,
times and dates, and whether two statements' figures can both be right."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rag.answer.figures as figures
from rag.answer.figures import (
    agree,
    asked_kind,
    asked_reader,
    count_matches,
    counts,
    differ,
    times,
    words_value,
)


def values(text: str) -> list[tuple[str, float | None, float | None]]:
    return [(f.text, f.low, f.high) for f in counts(text)]


@pytest.mark.parametrize("text,expected", [
    ("An estimated 77 people have been killed", [("An estimated 77", 69.3, 84.7)]),
    ("Casualties1: 77-100 killed", [("77-100", 77.0, 100.0)]),
    ("a toll of 77–100", [("77–100", 77.0, 100.0)]),
    ("over seventy people were killed", [("over seventy", 70.0, None)]),
    ("seventy-seven dead", [("seventy-seven", 77.0, 77.0)]),
    ("more than 8,000 people", [("more than 8,000", 8000.0, None)]),
    ("about 2,000 Wagner fighters", [("about 2,000", 1800.0, 2200.0)]),
    ("a few dozen of its members", [("a few dozen", 24.0, 60.0)]),
    ("several hundred people dead", [("several hundred", 300.0, 900.0)]),
    ("dozens of apparently dead soldiers", [("dozens", 24.0, 144.0)]),
    ("two thousand troops", [("two thousand", 2000.0, 2000.0)]),
    ("No casualties were reported.", [("No casualties", 0.0, 0.0)]),
    ("there have been no confirmed reports of casualties", [("no confirmed reports of casualties", 0.0, 0.0)]),
    ("Nobody was killed.", [("Nobody was killed", 0.0, 0.0)]),
])
def test_counts(text, expected):
    got = values(text)
    assert [g[0] for g in got] == [e[0] for e in expected]
    for (_, low, high), (_, want_low, want_high) in zip(got, expected):
        assert low == pytest.approx(want_low) and (high == want_high if want_high is None else high == pytest.approx(want_high))


@pytest.mark.parametrize("text", ["in 2015 the city", "from 2021 to 2023", "at around 05:00", "on 17 September 2024",
                                  "rose by 46 percent", "more than 5 km away", "it lasted nine hours", "one of the attackers"])
def test_not_counts(text):
    assert counts(text) == []


def test_spans_are_exact():
    text = "That same day, AFP reported a toll of 77 killed and 255 injured."
    for f in counts(text):
        assert text[f.start : f.end] == f.text


def test_words_value():
    assert words_value("seventy seven") == (77.0, 77.0)
    assert words_value("a hundred") == (100.0, 100.0)
    assert words_value("one hundred and twenty") == (120.0, 120.0)
    assert words_value("bananas") is None


def test_times_and_dates():
    found = times("The attacks began in the early morning of 17 September 2024 at around 05:00, when gunmen attacked")
    assert [(f.kind, f.text) for f in found] == [("time", "early morning"), ("date", "17 September 2024"), ("time", "at around 05:00")]
    assert times("It was around 4am that the detonations woke us up")[0].low == 4 * 60 - 15
    assert [f.text for f in times("flights resumed on Tuesday afternoon")] == ["Tuesday", "afternoon"]


def test_asked_kind():
    assert asked_kind("How many people were killed?") == "count"
    assert asked_kind("What was the death toll?") == "count"
    assert asked_kind("When did the attack start?") == "time"
    assert asked_kind("At what time did it begin?") == "time"
    assert asked_kind("Who claimed the attack?") is None


def test_asked_figures_leave_out_what_the_question_states():
    statement = "In 2015, 20 people were killed at the hotel and 5 at the club."
    def asked(question: str) -> list[str]:
        reader = asked_reader(question)
        assert reader is not None
        return [f.text for f in reader(statement)]

    assert asked("How many were killed in the 2015 attacks?") == ["20", "5"]
    assert asked("How many of the 20 victims died at the hotel?") == ["5"]
    assert asked_reader("Who attacked the hotel?") is None


def test_agreement():
    toll = counts("An estimated 77 people have been killed")
    rng = counts("Casualties1: 77-100 killed")
    over = counts("over seventy people were killed")
    zero = counts("No casualties were reported.")
    assert agree(toll, rng) and agree(toll, over) and agree(rng, over)
    assert not agree(toll, zero) and not agree(rng, zero)
    assert agree(toll, []) and not differ([toll, rng, over, []]) and differ([toll, rng, zero])
    assert differ([times("at around 05:00"), times("around 4am")])
    assert not differ([times("at around 05:00"), times("early morning")])


# Words and marks that make and break figures: numbers in digits and words, qualifiers, months,
# parts of the day, "no casualties", punctuation that the patterns look behind and ahead at.
_PIECES = st.sampled_from([
    "7", "77", "1,200", "3.5", "2024", "05:00", "4am", "10 p.m.", "seventy", "seventy-seven", "one", "a", "an", "few",
    "dozen", "dozens", "several", "hundred", "thousand", "more than", "over", "about", "at least", "up to", "in",
    "September", "Tuesday", "dawn", "early morning", "afternoon", "no casualties", "Nobody was killed", "None were hurt",
    "people", "killed", "Sept", "km", "percent", "%", "-", "–", ".", ",", ":", "(", "'", "x", "_", "Seventy", "ONE",
    "fıve", "FİVE", "ſeven", "approxımately", "nıght", "Frıday", "٣",  # letters and digits the patterns match case-blind
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_PIECES, st.sampled_from([" ", "", "-", ", ", "\n"])), max_size=14))
def test_figures_are_read_as_the_patterns_read_them_everywhere(pieces):
    """The shortcuts (count pattern tried only where a count can begin, whole-text checks before
    the time and date patterns) find exactly what the patterns find on their own."""
    text = "".join(word + gap for word, gap in pieces)
    assert [m.span() for m in count_matches(text)] == [m.span() for m in figures._COUNT.finditer(text)]
    folded = text.casefold()
    if "no" not in folded:
        assert not figures._NONE.search(text)
    if not re.search(r"\d", text):
        assert not figures._TIME.search(text)
    if not figures._holds(folded, figures._PART_WORDS):
        assert not figures._PART.search(text)
    if not figures._holds(folded, figures._DATE_WORDS):
        assert not figures._DATE.search(text)


@pytest.mark.parametrize("text, expected", [
    ("Three people died; <script>window.__pwned=1</script> and 2 more", ["Three", "2"]),
    ("See https://example.com/page/3 or www.example.org/4 for 5 photos", ["5"]),
    ("Write to team3@example.com or a.b-9@news.example: 4 staff", ["4"]),
    ("An A320 and the G7 delegation carried 150 passengers", ["150"]),
    ("`x = 5` and {count: 8} killed 7", ["7"]),
    ('<img width="2" alt="6"> nine soldiers, [12] cited', ["nine"]),
    ("snake_case_2 and path\\to\\3 but 11 villagers", ["11"]),
])
def test_figures_are_marked_only_in_prose(text: str, expected: list[str]):
    assert [f.text for f in figures.counts(text)] == expected


def test_times_and_dates_in_markup_or_links_are_not_figures():
    text = 'At 05:00 <time datetime="2024-09-17T05:00">) https://x.example/17-september-2024 on 17 September 2024'
    assert [f.text for f in figures.times(text)] == ["05:00", "17 September 2024"]


@given(st.text(alphabet=st.sampled_from(list("ab 12=_<>`@.:/"), ), max_size=40))
def test_prose_only_keeps_a_subset_with_exact_spans(text: str):
    every = figures.count_matches(text)
    kept = figures.counts(text)
    assert len(kept) <= len(every) + text.casefold().count("no")
    for f in kept:
        assert text[f.start:f.end] == f.text
