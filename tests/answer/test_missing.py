"""The "not found in these passages" line: no question frame, no word a shown passage says in other words."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rag.answer.missing import FRAME_WORDS, SYNONYMS, shown_missing
from rag.index import stemmer

STEM = stemmer()


def test_frame_words_are_never_listed_but_names_are():
    assert shown_missing(["many", "Wagner", "soldiers"], [False, True, False], ["Fighters were killed."], STEM) \
        == ("Wagner", "soldiers")
    assert shown_missing(["much", "get", "happened"], [False, False, False], [""], STEM) == ()
    assert shown_missing(["Many"], [True], [""], STEM) == ("Many",)  # capitalised mid-question: maybe a name


def test_a_synonym_in_a_shown_passage_carries_the_word():
    killed = ["At least 77 people were killed in the attack."]
    assert shown_missing(["died"], [False], killed, STEM) == ()
    assert shown_missing(["died"], [False], ["Buildings burned."], STEM) == ("died",)
    assert shown_missing(["wounded"], [False], ["About 200 others were injured."], STEM) == ()
    assert shown_missing(["wounded"], [False], killed, STEM) == ("wounded",)  # another group: still missing
    assert shown_missing(["budget", "overall"], [False, False], killed, STEM) == ("budget", "overall")


@given(st.lists(st.sampled_from(sorted(FRAME_WORDS | {w for g in SYNONYMS for w in g} | {"budget", "weather", "JNIM"})),
                max_size=6, unique=True), st.text(max_size=80))
def test_the_line_only_ever_drops_words(words, text):
    names = [w[0].isupper() for w in words]
    shown = shown_missing(words, names, [text], STEM)
    assert list(shown) == [w for w in words if w in shown]  # a subsequence, in order
    assert all(w in shown for w, n in zip(words, names) if n)  # names are never hidden
    assert not any(w.lower() in FRAME_WORDS for w, n in zip(shown, names) if not n)
