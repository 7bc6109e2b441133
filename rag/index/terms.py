"""Words as the lexical side sees them: one tokenizer pattern, one stemmer, two stopword lists.

The BM25 index, the sentence term lists, the question's terms and the "missing words" line
all cut and stem text the same way, so a word counts as present exactly when BM25 would
match it. Documents keep Lucene's short stopword list (what bm25s calls "en"), as indexed;
questions also drop the question frame ("who", "did", "which"...), which otherwise reads as
a rare and therefore heavily weighted word of news text (README: "Search").
"""

from __future__ import annotations

import re
from collections.abc import Callable

WORD_PATTERN = r"(?u)\b\w\w+\b"  # bm25s's default: runs of two or more word characters
WORD = re.compile(WORD_PATTERN)
STEMMER_LANGUAGE = "english"  # Snowball, through PyStemmer

# Lucene's English stopwords: removed from documents and questions alike (bm25s "en").
DOCUMENT_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)

# NLTK's English stopword list (as bm25s ships it, "en_plus"), removed from questions only;
# less "won", which NLTK lists for "won't" but which is a real word of questions ("Who won?").
QUESTION_STOPWORDS = DOCUMENT_STOPWORDS | frozenset(
    """about above after again against ain all am any aren aren't because been before being below
    between both can couldn couldn't d did didn didn't do does doesn doesn't doing don don't down
    during each few from further had hadn hadn't has hasn hasn't have haven haven't having he her
    here hers herself him himself his how i isn isn't it's its itself just ll m ma me mightn mightn't more
    most mustn mustn't my myself needn needn't nor now o off once only other our ours ourselves
    out over own re s same shan shan't she she's should should've shouldn shouldn't so some t
    than that'll theirs them themselves those through too under until up ve very wasn wasn't we
    were weren weren't what when where which while who whom why won't wouldn wouldn't y you
    you'd you'll you're you've your yours yourself yourselves""".split()
)

_NEGATION = re.compile(r"\b(?:not|never|no|cannot|nor|none|neither|without)\b|n[’']t\b", re.IGNORECASE)


def is_negated(text: str) -> bool:
    """Whether the text holds a negation ("not", "never", "no", "n't"...)."""
    return _NEGATION.search(text) is not None


def stemmer() -> Callable[[str], str]:
    """The Snowball stemmer BM25 uses, as a function of one lower-cased word."""
    import Stemmer

    return Stemmer.Stemmer(STEMMER_LANGUAGE).stemWord
