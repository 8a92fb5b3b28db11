"""Answers, passages and the article list as HTML for the web UI, and as JSON for its API.

Everything that comes from an article or a user is escaped here, so nothing they contain can run
in the browser. The HTML is one line with no blank lines: the chat renders Markdown, and a raw
HTML block on a single line passes through it untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from urllib.parse import quote, urlsplit

from articleqa.schema import Answer, Article, Hit
from articleqa.text.sentences import HEADING

# Characters of article text shown on each side of a passage in its "in the article" view.
CONTEXT_CHARS = 600
CONFIDENCE_HELP = (
    "How likely the answer shown holds what you asked, from 0 to 1, as measured on our test "
    "questions: at 0.6, about 6 answers in 10 were right. Never 1: read the passage to be sure."
)
SCORES_HELP = (
    "score: how well the passage matches in the chosen mode (higher is better); meaning: its rank among "
    "the passages closest in meaning, and how close (cosine similarity, 0 to 1); keyword: its rank by "
    "the question's words (BM25); best sentence: how close its closest sentence is; word match: how "
    "well its words match the question's, word by word"
)


def text_html(text: str, *, headings: bool = False) -> str:
    """Escaped text with its line breaks kept; with `headings`, an article's '## Heading' lines
    are shown as headings, not as the Markdown marks."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        match = HEADING.match(line) if headings else None
        if match:
            level = len(match.group(1))
            lines.append(f'<strong class="aqa-h aqa-h{level}">{escape(match.group(2))}</strong>')
        else:
            lines.append(escape(line))
    return "<br>".join(lines)


def safe_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) link, else None (no javascript:, data:, file: ...)."""
    if not url or any(c.isspace() or ord(c) < 32 for c in url.strip()):
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def source_html(article: Article) -> str:
    """A link when the article has a web address, else its file or upload name as text."""
    url = safe_url(article.url)
    if url:
        return f'<a href="{escape(url)}" target="_blank" rel="noopener noreferrer nofollow">{escape(url)}</a>'
    return f'<span class="aqa-source">{escape(article.source)}</span>'


def question_html(question: str) -> str:
    return f'<div class="aqa-question">{text_html(question)}</div>'


def error_html(message: str) -> str:
    return f'<div class="aqa-error"><strong>Cannot answer that.</strong> {text_html(message)}</div>'


def answer_html(answer: Answer, similar: Sequence[Sequence[tuple[str, str]]] | None = None) -> str:
    """The chat reply: the answer sentence and its cited passages, or an honest "not covered"."""
    searched = ""
    if answer.query and answer.query != answer.question:
        searched = f'<p class="aqa-note">Searched as: “{text_html(answer.query)}”</p>'
    similar = list(similar or [])
    similar += [()] * (len(answer.hits) - len(similar))
    passages = "".join(hit_html(h, answer.query or answer.question, s) for h, s in zip(answer.hits, similar))
    caveat = f'<p class="aqa-note aqa-caveat">{text_html(answer.note)}</p>' if answer.note else ""
    if not answer.found and answer.note and answer.hits:  # what the articles do say: shown, not folded
        return (
            f'<div class="aqa-reply aqa-miss"><p class="aqa-lead"><strong>{text_html(answer.reason)}</strong></p>'
            f"{caveat}{searched}{passages}</div>"
        )
    if not answer.found:
        nearest = ""
        if answer.hits:
            nearest = (
                f'<details class="aqa-nearest"><summary>Show nearest passages anyway ({len(answer.hits)})</summary>'
                f"{passages}</details>"
            )
        return (
            f'<div class="aqa-reply aqa-miss"><p class="aqa-lead"><strong>Not covered by these articles.</strong> '
            f"{text_html(answer.reason)}</p>{searched}{nearest}</div>"
        )
    sources = "passage" if len(answer.hits) == 1 else "passages"
    # The text to copy rides in a hidden span: the chat's sanitizer drops data- attributes. Its
    # line breaks are character references: the chat reads a reply as Markdown, and a blank line
    # there would end the HTML (the passages would fall into the hidden span).
    copy = (
        '<button class="aqa-copy" type="button">Copy answer</button>'
        f'<span class="aqa-copy-text">{escape(answer_citation(answer)).replace(chr(10), "&#10;")}</span>'
    )
    return (
        f'<div class="aqa-reply"><p class="aqa-lead"><mark>{_lead_html(answer)}</mark></p>{caveat}{copy}{searched}'
        f'<p class="aqa-note"><span class="aqa-confidence" title="{CONFIDENCE_HELP}">Confidence '
        f"{answer.confidence:.2f}</span>"
        f" · from {len(answer.hits)} cited {sources}:</p>"
        f"{passages}</div>"
    )


def citation(hit: Hit) -> str:
    """Where a passage comes from, as one line: title, source (its link), page, date."""
    parts = [f"“{hit.article.title}”", hit.article.link]
    parts += [p for p in (hit.page_label, hit.article.date) if p]
    return ", ".join(parts)


def answer_citation(answer: Answer) -> str:
    """The answer sentence and where it comes from: what the Copy button puts on the clipboard."""
    return f"{answer.text} — {citation(answer.hits[0])}" if answer.hits else answer.text


def answer_markdown(answer: Answer) -> str:
    """One turn of a conversation as Markdown, with its citations (for the export)."""
    lines = [f"## {answer.question}", ""]
    if answer.query and answer.query != answer.question:
        lines += [f"*Searched as: {answer.query}*", ""]
    if not answer.found:
        return "\n".join([*lines, f"Not covered by these articles. {answer.reason}", ""])
    lines += [f"**{answer.text}**", ""]
    if answer.note:
        lines += [f"*{answer.note}*", ""]
    for hit in answer.hits:
        quoted = hit.text.replace("\n", "\n> ")
        lines += [f"{hit.rank}. {citation(hit)}", "", f"> {quoted}", ""]
    return "\n".join(lines)


def _lead_html(answer: Answer) -> str:
    """The answer's text, the fact asked for (its top passage's marked words) in <strong>."""
    top = answer.hits[0] if answer.hits else None
    if top is None or top.span_start is None or top.span_end is None or answer.text != top.highlight:
        return text_html(answer.text)
    start = top.highlight_start or 0
    return keyed_html(answer.text, top.span_start - start, top.span_end - start, headings=False)


def hit_html(hit: Hit, question: str = "", similar: Sequence[tuple[str, str]] = ()) -> str:
    """One cited passage: where it comes from, why it was chosen (in words, the numbers behind a
    toggle), the answer span marked."""
    article = hit.article
    where = " › ".join(hit.chunk.headings)
    heading = f' <span class="aqa-where">› {escape(where)}</span>' if where else ""
    meta = [source_html(article) if safe_url(article.url) else read_link(hit, friendly_source(article))]
    if hit.page_label:
        meta.append(f'<span class="aqa-page">{escape(hit.page_label)}</span>')
    if article.author:
        meta.append(f'<span class="aqa-author">{escape(article.author)}</span>')
    if article.date:
        meta.append(f'<span class="aqa-date">{escape(article.date)}</span>')
    passage = marked_html(hit.text, hit.highlight_start, hit.highlight_end, key=(hit.span_start, hit.span_end))
    return (
        f'<div class="aqa-hit"><div class="aqa-hit-title"><span class="aqa-rank">[{hit.rank}]</span> '
        f"<strong>{escape(article.title)}</strong>{heading}</div>"
        f'<div class="aqa-meta">{" · ".join(meta)}</div>'
        f'<blockquote class="aqa-passage">{passage}</blockquote>'
        f'<p class="aqa-why">{escape(why(hit, question, similar))}</p>'
        f'<details class="aqa-context"><summary>Show in the article</summary>{context_html(hit)}</details>'
        f"{read_link(hit)}"
        f'<details class="aqa-scores"><summary>Scores</summary><span title="{SCORES_HELP}">'
        f"{escape(relevance(hit))}</span></details></div>"
    )


def friendly_source(article: Article) -> str:
    """A file's name as a person knows it: "paper.pdf (uploaded)", "002_….txt (built-in)", the
    base name of a path (not the whole path)."""
    kind, _, rest = article.source.partition(":")
    if kind == "upload" and rest:
        return f"{rest} (uploaded)"
    if kind == "builtin" and rest:
        return f"{rest} (built-in)"
    return article.source.replace("\\", "/").rsplit("/", 1)[-1] or article.source


def read_link(hit: Hit, label: str = "Read the whole article") -> str:
    """The link that opens the whole article in the reader, at this passage (static/page.js handles it:
    the chat's sanitizer keeps a plain fragment link and nothing that would run)."""
    start, end = hit.chunk.start, hit.chunk.end
    hs = start + hit.highlight_start if hit.highlight_start is not None else -1
    he = start + hit.highlight_end if hit.highlight_end is not None else -1
    target = f"aqa-read:{quote(hit.article.id, safe='')}:{start}:{end}:{hs}:{he}"
    return f'<a class="aqa-read" href="#{escape(target)}">{escape(label)}</a>'


def reader_html(article: Article, cited: tuple[int, int] | None = None, answer: tuple[int, int] | None = None) -> str:
    """A whole article, rendered (headings, paragraphs, lists, page numbers of a PDF), the cited
    passage marked (id "aqa-cited" on its start, to scroll to) and the answer sentence in bold."""
    meta = [source_html(article)]
    meta += [escape(v) for v in (article.author, article.date) if v]
    out = [f'<article class="aqa-reader"><h1>{escape(article.title)}</h1><p class="aqa-meta">{" · ".join(meta)}</p>']
    text, pos, listing, anchored = article.text, 0, False, False
    pages = {p: i + 1 for i, p in enumerate(article.pages) if i}
    for line in text.split("\n"):
        a, b = pos, pos + len(line)
        pos = b + 1
        page = next((f'<span class="aqa-pageno">p. {n}</span>' for p, n in pages.items() if a <= p <= b), "")
        if not line.strip():
            continue
        heading = HEADING.match(line)
        bullet = line.startswith("• ")
        body_start = a + (heading.start(2) if heading else 2 if bullet else 0)
        inner = _marked_span(text, body_start, b, cited, answer)
        if cited and not anchored and cited[0] < b and cited[1] > a:
            inner, anchored = f'<span id="aqa-cited"></span>{inner}', True
        if bullet != listing:
            out.append("<ul>" if bullet else "</ul>")
            listing = bullet
        if heading:
            level = min(6, len(heading.group(1)) + 1)
            out.append(f"{page}<h{level}>{inner}</h{level}>")
        elif bullet:
            out.append(f"<li>{page}{inner}</li>")
        else:
            out.append(f"<p>{page}{inner}</p>")
    if listing:
        out.append("</ul>")
    return "".join(out) + "</article>"


def _marked_span(text: str, a: int, b: int, cited, answer) -> str:
    """text[a:b], escaped, with the part inside `cited` in <mark> and inside `answer` in <strong>."""
    cuts = sorted({a, b, *(x for span in (cited, answer) if span for x in span if a < x < b)})
    pieces = []
    for x, y in zip(cuts, cuts[1:]):
        piece = escape(text[x:y])
        if answer and answer[0] <= x and y <= answer[1]:
            piece = f"<strong>{piece}</strong>"
        if cited and cited[0] <= x and y <= cited[1]:
            piece = f'<mark class="aqa-cited">{piece}</mark>'
        pieces.append(piece)
    return "".join(pieces)


def why(hit: Hit, question: str, similar: Sequence[tuple[str, str]] = ()) -> str:
    """Why the passage was chosen, in words: close in meaning, the question's words it says in
    other words ("fast" ≈ "quickly", from Library.similar_words), the words it shares."""
    reasons = []
    if (hit.dense_rank is not None and hit.dense_rank <= 3) or (hit.sentence_score or 0) >= 0.5:
        reasons.append("close in meaning to your question")
    if similar:
        reasons.append(", ".join(f"“{mine}” ≈ “{theirs}”" for mine, theirs in similar))
    shared = shared_words(question, f"{hit.article.title} {' '.join(hit.chunk.headings)} {hit.text}")
    if shared:
        reasons.append("same words: " + ", ".join(shared[:6]))
    elif hit.dense_rank is not None:
        reasons.append("found by meaning: it shares no key word with the question")
    return "Why: " + "; ".join(reasons or ["the nearest passage found, a weak match"]) + "."


# Words that add emphasis to a question, not a topic: never shown as "same words".
EMPHASIS = frozenset({"exactly", "really", "actually", "truly", "basically", "precisely", "anyway"})


def shared_words(question: str, text: str) -> list[str]:
    """The question's key words (as the question writes them) that the text has too, in any form
    ("exosomes" matches "exosome")."""
    from articleqa.text.lexical import content_terms

    have = content_terms(text)
    out: list[str] = []
    for word in re.findall(r"[^\W_][\w'-]*", question):
        if word.lower() in EMPHASIS:
            continue
        terms = content_terms(word)
        if terms and terms <= have and word.lower() not in (w.lower() for w in out):
            out.append(word)
    return out


def relevance(hit: Hit) -> str:
    """The numbers behind a passage's place: the fused score and what each signal made of it."""
    parts = [f"score {hit.score:.2f}"]
    if hit.dense_rank is not None:
        similarity = f", similarity {hit.dense_score:.2f}" if hit.dense_score is not None else ""
        parts.append(f"meaning #{hit.dense_rank}{similarity}")
    if hit.lexical_rank is not None:
        parts.append(f"keyword #{hit.lexical_rank}")
    if hit.sentence_score is not None:
        parts.append(f"best sentence {hit.sentence_score:.2f}")
    if hit.token_score is not None:
        parts.append(f"word match {hit.token_score:.2f}")
    return " · ".join(parts)


def marked_html(
    text: str,
    start: int | None,
    end: int | None,
    *,
    tag: str = "mark",
    key: tuple[int | None, int | None] = (None, None),
) -> str:
    """An article's text, escaped, headings shown as headings, text[start:end] wrapped in <tag>
    (no mark when there is no span), and inside it text[key] (the fact asked for) in <strong>."""
    if start is None or end is None or not 0 <= start < end <= len(text):
        return text_html(text, headings=True)
    marked = keyed_html(text[start:end], *(None if k is None else k - start for k in key))
    return f"{text_html(text[:start], headings=True)}<{tag}>{marked}</{tag}>{text_html(text[end:], headings=True)}"


def keyed_html(text: str, a: int | None, b: int | None, *, headings: bool = True) -> str:
    """text_html(text) with text[a:b] (the date, number or name asked for) in <strong>."""
    if a is None or b is None or not 0 <= a < b <= len(text):
        return text_html(text, headings=headings)
    return (
        f'{text_html(text[:a], headings=headings)}<strong class="aqa-key">{escape(text[a:b])}</strong>'
        f"{text_html(text[b:], headings=headings)}"
    )


def context_html(hit: Hit, chars: int = CONTEXT_CHARS) -> str:
    """The passage inside the article text around it, the passage and its answer span marked."""
    text, start, end = hit.article.text, hit.chunk.start, hit.chunk.end
    if not (0 <= start < end <= len(text)) or text[start:end] != hit.chunk.text:
        before, after = "", ""
    else:
        before, after = (
            _trim_start(text[max(0, start - chars) : start], start > chars),
            _trim_end(text[end : end + chars], end + chars < len(text)),
        )
    passage = marked_html(hit.chunk.text, hit.highlight_start, hit.highlight_end, tag="strong")
    return (
        f'<div class="aqa-article">{text_html(before, headings=True)}<mark class="aqa-in-article">{passage}</mark>'
        f"{text_html(after, headings=True)}</div>"
    )


def library_html(articles: Iterable[Article], passages: Mapping[str, int]) -> str:
    """The indexed articles as a table: title, source, date, passages."""
    rows = "".join(
        f"<tr><td>{escape(a.title)}</td><td>{source_html(a)}</td><td>{escape(a.date or '—')}</td>"
        f'<td class="aqa-num">{passages.get(a.id, 0)}</td></tr>'
        for a in articles
    )
    if not rows:
        return '<p class="aqa-note">No articles yet: upload some below.</p>'
    return (
        '<table class="aqa-library"><thead><tr><th>Title</th><th>Source</th><th>Date</th><th>Passages</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _trim_start(text: str, cut: bool) -> str:
    if cut and " " in text:
        text = "…" + text[text.index(" ") + 1 :]
    return text


def _trim_end(text: str, cut: bool) -> str:
    if cut and " " in text:
        text = text[: text.rindex(" ")] + "…"
    return text
