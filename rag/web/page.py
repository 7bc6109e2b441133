"""The browser page's HTML: ranked cited passages, by-source statements, the source in context.

Rendering is pure functions from answers to HTML, with every piece of source text, title and
file name escaped, so an article holding `<script>`, HTML attributes or markdown is shown
literally and nothing in it runs.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Mapping, Sequence

from rag.answer import Answer, Figure, Hit, Statement
from rag.sources import shorten
from rag.types import Manifest

SOURCE_ROUTE = "/rag/source"  # served by rag.web.server: a source's indexed text as plain text
DEFAULT_K = 5

CONTEXT_CHARS = 1200  # characters of the source shown on each side of a citation
EXAMPLES = [
    "How many people were killed in the attack on Bamako?",
    "Which group claimed responsibility for the assault?",
    "Why was the airport closed?",
    "Who leads Mali's military government?",
    "What is a good recipe for pancakes?",
]

CSS = """
.rag-results { display: flex; flex-direction: column; gap: 14px; }
/* contrast (WCAG AA, 4.5:1): Gradio's primary button and its footer links are lighter than that */
#ask { background: #9a3412 !important; border-color: #9a3412 !important; color: #fff !important; }
#ask:hover { background: #7c2d12 !important; }
footer .show-api, footer .built-with, footer .settings, footer a, footer button { color: #3d4450 !important; }
#ask:focus-visible, .rag-example:focus-visible, #question textarea:focus-visible {
  outline: 3px solid #0969da !important; outline-offset: 2px; }
.rag-sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.rag-banner { padding: 10px 14px; border-radius: 8px; font-weight: 600; }
.rag-banner.answered { background: #e8f5e9; color: #1b5e20; }
.rag-banner.unanswered { background: #fff3e0; color: #8a4b00; }
.rag-banner.message { background: #eef2ff; color: #1e3a8a; }
.rag-card { border: 1px solid #d0d7de; border-radius: 10px; padding: 12px 16px; background: #fff; color: #1f2328; }
.rag-card.not-answer { border-style: dashed; background: #fafafa; }
.rag-card header { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
.rag-rank { font-weight: 700; font-size: 1.1em; }
.rag-strength { font-size: .85em; padding: 1px 8px; border-radius: 10px; }
.rag-strength.strong { background: #dafbe1; color: #116329; }
.rag-strength.good { background: #ddf4ff; color: #0550ae; }
.rag-strength.weak { background: #fff8c5; color: #7d4e00; }
.rag-strength.none { background: #eaeef2; color: #57606a; }
.rag-score { color: #57606a; font-size: .85em; }
.rag-citation { color: #57606a; font-size: .9em; margin: 4px 0 8px; }
.rag-citation code { font-size: .95em; }
.rag-passage, .rag-source-text { white-space: pre-wrap; line-height: 1.5; margin: 0; }
.rag-card mark { background: #fff176; color: inherit; padding: 0 1px; }
.rag-source { margin-top: 8px; }
.rag-source summary { cursor: pointer; color: #0969da; }
.rag-more > summary { cursor: pointer; color: #0550ae; padding: 4px 0; }
.rag-more > summary:focus-visible, .rag-source summary:focus-visible { outline: 2px solid #0969da; outline-offset: 2px; }
.rag-more[open] { display: flex; flex-direction: column; gap: 14px; }
.rag-source-text { max-height: 420px; overflow-y: auto; border: 1px solid #d0d7de; border-radius: 6px;
  padding: 10px; margin-top: 6px; background: #f6f8fa; }
.rag-source-text .rag-in-passage { background: #ddf4ff; }
.rag-footer { color: #57606a; font-size: .85em; }
.rag-missing { color: #8a4b00; font-size: .95em; }
.rag-explain { color: #57606a; font-size: .85em; }
.rag-changed { color: #8a4b00; font-size: .9em; }
.rag-full-source { display: inline-block; margin-top: 4px; font-size: .9em; }
.rag-quote { margin: 0; padding: 8px 14px; border-left: 4px solid #1b5e20; background: #f6f8fa; color: #1f2328; }
.rag-quote q { font-size: 1.05em; line-height: 1.5; }
.rag-quote cite, .rag-statement cite { display: block; font-style: normal; color: #57606a; font-size: .85em; margin-top: 4px; }
.rag-by-source { border: 1px solid #d0d7de; border-radius: 10px; padding: 8px 14px; background: #fff; color: #1f2328; }
.rag-by-source h2 { margin: 2px 0 6px; font-size: 1em; }
.rag-differ { font-weight: 600; color: #8a4b00; margin: 0 0 6px; }
.rag-statement { padding: 6px 0; border-top: 1px solid #eaeef2; }
.rag-statement:first-of-type { border-top: none; }
.rag-statement .rag-title { font-weight: 600; }
.rag-statement mark.rag-figure, .rag-quote mark.rag-figure { background: #ffd8a8; font-weight: 600; color: inherit; }
.rag-also { font-size: .9em; color: #57606a; margin-top: 2px; }
.rag-also summary { cursor: pointer; }
#results { padding: 0 !important; border: none !important; background: none !important; }
#results .prose, #results > div { padding: 0 !important; margin: 0 !important; }
@media (max-width: 640px) {
  .rag-card, .rag-by-source { padding: 8px 10px; }
  .rag-results { gap: 10px; }
  #title h2 { font-size: 1.2em; margin: 0; }
  #title p { display: none; }
}
"""

# Opening a source scrolls its box to the cited passage (the toggle event does not bubble,
# so it is caught on the way down).
HEAD = """
<script>
// A new answer is announced to screen readers: #results becomes a polite live region, and a
// short status line (the banner's words) is spoken in place of the whole page of cards.
(function () {
  function mark() {
    var box = document.getElementById("results");
    if (!box) return false;
    box.setAttribute("role", "region");
    box.setAttribute("aria-label", "Answer");
    if (!document.getElementById("rag-status")) {
      var status = document.createElement("div");
      status.id = "rag-status"; status.className = "rag-sr-only";
      status.setAttribute("role", "status"); status.setAttribute("aria-live", "polite");
      box.parentNode.insertBefore(status, box);
      new MutationObserver(function () {
        var banner = box.querySelector(".rag-banner");
        var text = banner ? banner.textContent : "";
        if (text && status.textContent !== text) status.textContent = text;
      }).observe(box, {childList: true, subtree: true, characterData: true});
    }
    return true;
  }
  if (!mark()) {
    var wait = new MutationObserver(function () { if (mark()) wait.disconnect(); });
    wait.observe(document.documentElement, {childList: true, subtree: true});
  }
})();
document.addEventListener("toggle", function (event) {
  var box = event.target;
  if (!box.classList || !box.classList.contains("rag-source") || !box.open) return;
  var target = box.querySelector(".rag-in-passage");
  if (target) target.scrollIntoView({block: "center", behavior: "instant"});
}, true);
</script>
"""


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def strength(hit: Hit, answered: bool, threshold: float) -> tuple[str, str]:
    """A plain-language cue from the hit's support (the number the card shows), and its CSS
    class: at or above the threshold the passage supports an answer; half-way from there to
    1 it is strong evidence."""
    if not answered:
        return "Not an answer", "none"
    if hit.support >= threshold + (1.0 - threshold) / 2:
        return "Strong evidence", "strong"
    if hit.support >= threshold:
        return "Supports an answer", "good"
    return "Weak evidence", "weak"


def marked(text: str, offset: int, start: int, end: int) -> str:
    """`text` (which starts at `offset` in its file) escaped, with [start, end) in <mark>."""
    a, b = max(start - offset, 0), max(min(end - offset, len(text)), 0)
    return esc(text[:a]) + "<mark>" + esc(text[a:b]) + "</mark>" + esc(text[b:])


def window(text: str, start: int, end: int, radius: int = CONTEXT_CHARS) -> tuple[int, int]:
    """[lo, hi) around [start, end): at most `radius` characters on each side, cut at whitespace,
    so a page never carries a whole large source (the full text is one link away)."""
    lo, hi = max(0, start - radius), min(len(text), end + radius)
    if lo > 0:
        cut = text.find(" ", lo, start)
        lo = cut + 1 if cut != -1 else lo
    if hi < len(text):
        cut = text.rfind(" ", end, hi)
        hi = cut if cut != -1 else hi
    return lo, hi


def source_view(source_text: str, start: int, end: int, highlight: tuple[int, int], anchor: str) -> str:
    """The source around the cited span (a bounded window), the span tinted and its supporting
    sentence marked."""
    lo, hi = window(source_text, start, end)
    return (
        ("… " if lo > 0 else "")
        + esc(source_text[lo:start])
        + f'<span class="rag-in-passage" id="{esc(anchor)}">'
        + marked(source_text[start:end], start, *highlight)
        + "</span>"
        + esc(source_text[end:hi])
        + (" …" if hi < len(source_text) else "")
    )


def render_context(source_text: str | None, source: str, start: int, end: int, highlight: tuple[int, int], anchor: str) -> str:
    """"Open the source in context" for a card or a statement: the window around the citation,
    and a link to the whole source as plain text."""
    if source_text is None:
        return ""
    link = f"{SOURCE_ROUTE}?name={urllib.parse.quote(source, safe='')}"
    return ('<details class="rag-source"><summary>Open the source in context</summary>'
            f'<div class="rag-source-text">{source_view(source_text, start, end, highlight, anchor)}</div>'
            f'<a class="rag-full-source" href="{esc(link)}" target="_blank" rel="noopener noreferrer">'
            f"Open the whole source ({len(source_text):,} characters, plain text)</a></details>")


def render_card(hit: Hit, answered: bool, source_text: str | None, threshold: float) -> str:
    label, css = strength(hit, answered, threshold)
    classes = "rag-card" + ("" if answered else " not-answer")
    source = render_context(source_text, hit.source, hit.start, hit.end, hit.highlight, f"passage-{hit.rank}")
    return (
        f'<article class="{classes}" data-rank="{hit.rank}">'
        f'<header><span class="rag-rank">#{hit.rank}</span>'
        f'<span class="rag-strength {css}">{label}</span>'
        f'<span class="rag-score" title="support: how likely this passage answers the question (0 to 1)">'
        f"support {hit.support:.2f}</span></header>"
        f'<div class="rag-citation">{esc(hit.title)} · <code>{esc(hit.source)}</code> · '
        f"characters {hit.start}–{hit.end}</div>"
        f'<p class="rag-passage">{marked(hit.text, hit.start, *hit.highlight)}</p>'
        f"{source}</article>"
    )


def marked_figures(text: str, offset: int, figures: Sequence[Figure]) -> str:
    """`text` (at `offset` in its file) escaped, each figure's span in <mark class="rag-figure">."""
    out, at = [], 0
    for f in sorted(figures, key=lambda f: f.start):
        a, b = f.start - offset, f.end - offset
        if a < at or b > len(text):
            continue
        out += [esc(text[at:a]), '<mark class="rag-figure">', esc(text[a:b]), "</mark>"]
        at = b
    return "".join(out) + esc(text[at:])


def citation(title: str, source: str, start: int, end: int) -> str:
    return f"{esc(title)} · <code>{esc(source)}</code> · characters {start}–{end}"


def render_quote(answer: Answer) -> str:
    """The best supporting sentence, quoted with its citation: the top of an answered page."""
    if not answer.answered or not answer.hits:
        return ""
    hit = max(answer.hits, key=lambda h: h.support)
    a, b = hit.highlight
    sentence = hit.text[a - hit.start : b - hit.start]
    return (f'<blockquote class="rag-quote"><q>{esc(sentence)}</q>'
            f"<cite>{citation(hit.title, hit.source, a, b)}</cite></blockquote>")


def render_by_source(answer: Answer, texts: Mapping[str, str]) -> str:
    """"What each source says": one row per group of statements that say the same thing, the
    lead statement with the asked-for figures marked, and who else reports it (each cited)."""
    if not answer.by_source:
        return ""
    rows = []
    groups: dict[int, list[Statement]] = {}
    for st in answer.by_source:
        groups.setdefault(st.group, []).append(st)
    for members in groups.values():
        lead, others = members[0], members[1:]
        also = ""
        if others:
            items = "".join(
                f'<li><cite>{citation(o.title, o.source, o.start, o.end)}</cite>“{marked_figures(o.text, o.start, o.figures)}”'
                f"{render_context(texts.get(o.source), o.source, o.start, o.end, o.highlight, f'statement-{o.source}')}</li>"
                for o in others
            )
            names = ", ".join(esc(shorten(o.title, 48)) for o in others)
            also = f'<details class="rag-also"><summary>Also reported by {names}</summary><ul>{items}</ul></details>'
        rows.append(
            f'<div class="rag-statement" data-source="{esc(lead.source)}">'
            f'<span class="rag-title">{esc(shorten(lead.title, 48))}</span>: “{marked_figures(lead.text, lead.start, lead.figures)}”'
            f"<cite>{citation(lead.title, lead.source, lead.start, lead.end)} · support {lead.score:.2f}</cite>"
            f"{also}{render_context(texts.get(lead.source), lead.source, lead.start, lead.end, lead.highlight, f'statement-{lead.source}')}</div>"
        )
    differ = '<p class="rag-differ">The sources give different figures.</p>' if answer.figures_differ else ""
    return f'<section class="rag-by-source"><h2>What each source says</h2>{differ}{"".join(rows)}</section>'


def render_answer(answer: Answer, texts: Mapping[str, str]) -> str:
    supporting = answer.supporting_hits
    if answer.answered:
        sources = len({h.source for h in supporting})
        banner = (
            f'<div class="rag-banner answered">The sources answer this: {len(supporting)} passage'
            f'{"s" if len(supporting) != 1 else ""} from {sources} source{"s" if sources != 1 else ""} below.</div>'
        )
    else:
        banner = (
            '<div class="rag-banner unanswered">The sources don\'t answer this. The nearest '
            "passages are listed below for reference; they are not an answer.</div>"
        )
    missing = (
        f'<div class="rag-missing">Not found in these passages: {esc(", ".join(answer.missing))}</div>'
        if answer.missing
        else ""
    )
    explain = (
        f'<div class="rag-explain">Cards are ranked by relevance. Each card\'s support (0 to 1) says how likely '
        f"that passage answers the question; the sources count as answering when the best card reaches "
        f"{answer.threshold:.2f} (this one: {answer.support:.2f}).</div>"
    )
    changed = (
        f'<div class="rag-changed">{esc(", ".join(answer.changed_sources))} changed since the index was built: the '
        "quotes are the indexed text. The index refreshes itself when the app rebuilds it (restart, or run rag index).</div>"
        if answer.changed_sources
        else ""
    )
    cards = "".join(render_card(h, answer.answered, texts.get(h.source), answer.threshold)
                    for h in (supporting if answer.answered else answer.hits))
    rest = [h for h in answer.hits if h not in supporting] if answer.answered else []
    if rest:  # shown on request only: they do not answer, and at full size they would look like evidence
        cards += (
            f'<details class="rag-more"><summary>{len(rest)} more passage{"s" if len(rest) != 1 else ""} that '
            f'do{"es" if len(rest) == 1 else ""} not answer this</summary>'
            + "".join(render_card(h, answer.answered, texts.get(h.source), answer.threshold) for h in rest)
            + "</details>"
        )
    missing = changed + missing
    return (
        f'<div class="rag-results" data-answered="{str(answer.answered).lower()}">'
        f"{banner}{render_quote(answer)}{missing}{render_by_source(answer, texts)}{explain}{cards}</div>"
    )


def render_message(message: str) -> str:
    return f'<div class="rag-results"><div class="rag-banner message">{esc(message)}</div></div>'


def render_footer(manifest: Manifest) -> str:
    return (
        f'<div class="rag-footer">{len(manifest.sources)} sources · {manifest.passages} passages · '
        f"model {esc(manifest.model)} · index built {esc(manifest.built_at)} "
        f"in {manifest.build_seconds:.1f} s</div>"
    )
