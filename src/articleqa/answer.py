"""Hits -> Answer: the sentence that answers, its offsets, and whether to answer at all.

No language model writes anything: the short answer is a sentence taken verbatim from the best
passage, chosen by its embedding similarity to the question plus how many question terms it has.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .lexical import content_terms
from .schema import Answer, Hit
from .text import words

# Weights next to cosine similarity when choosing the answer sentence (docs/how-it-works.md).
LEXICAL_WEIGHT = 0.3
TYPE_WEIGHT = 0.45
QUESTION_PENALTY = 0.1
# Two adjacent sentences are the answer when the second best of them scores within this of the
# best, up to PAIR_CHARS together (docs/evaluation.md: Rhine answer sentence 0.800 -> 0.824).
PAIR_MARGIN = 0.15
PAIR_CHARS = 400
_NUMBER = r"(\d+|a|one|two|three|four|five|six|seven|eight|nine|ten|twelve|few|several|couple of)"
_DURATION = re.compile(
    rf"\b{_NUMBER}\s+(seconds?|minutes?|hours?|days?|nights?|weeks?|months?|years?)\b"
    r"|\b(daily|weekly|monthly|overnight|immediately|every (day|night|week|morning|evening))\b",
    re.IGNORECASE,
)
_ANSWER_TYPES = [
    (  # what a word means: a sentence that glosses it ('the Obersee ("upper lake")', "literally")
        _MEANING := re.compile(
            r"\bwhat (does|do|did)\b.*\b(mean|stand for)\W*$|\b(meaning|translation) of\b"
            r"|\bhow (do you|to|would you) translate\b|\btranslat\w* (of|into)\b",
            re.I,
        ),
        re.compile(r"\(\s*[\"“‘']|\b(means?|meaning|literally|translat\w*)\b|\bi\.e\.|[\"“][^\"”]{2,40}[\"”]", re.I),
    ),
    (re.compile(r"\bhow (long|soon|quickly|fast|often)\b", re.IGNORECASE), _DURATION),
    (
        re.compile(r"\b(when|what (year|century|decade|date|month)|which (year|century))\b", re.IGNORECASE),
        re.compile(
            _DURATION.pattern + r"|\b(1[0-9]{3}|20[0-9]{2})s?\b|\bcentur(y|ies)\b|\b(BC|AD)\b"
            r"|\b(January|February|March|April|May|June|July|August|September|October|November|December)\b",
            re.IGNORECASE,
        ),
    ),
    (
        re.compile(r"\b(where|what (country|city|region|town|river|lake|sea)|which (country|city|region))\b", re.I),
        re.compile(r"\b(in|at|near|from|into|through|between|to|across|along)\s+(the\s+)?[A-Z][a-z]+"),
    ),
    (
        re.compile(r"\b(who|whom|whose)\b", re.IGNORECASE),
        re.compile(
            r"\b(Dr|Prof|Mr|Ms|Mrs)\.\s|\b(explains|says|said|notes|according to)\b|\b[A-Z][a-z]+ [A-Z][a-z]+\b"
        ),
    ),
    (
        re.compile(
            r"\bhow (much|many|hot|cold|warm|big|large|small|far|deep|high|tall|heavy|old|wide)\b"
            r"|\bwhat (percentage|proportion|price|cost|temperature|size|age|length|depth|height|area|number)\b",
            re.IGNORECASE,
        ),
        re.compile(rf"\d|\bpercent\b|[%$€£°]|\b{_NUMBER}\b|\b(hundred|thousand|million|billion)\b"),
    ),
]
# How much the question's word pieces matching a sentence's word pieces count (token vectors, the
# late-interaction signal at sentence level), next to the sentence vector's cosine.
TOKEN_WEIGHT = 0.5

_PRONOUNS = {
    "it", "its", "they", "them", "their", "theirs", "that", "this", "those", "these",
    "he", "she", "him", "her", "his", "hers", "one", "ones", "same", "else",
}  # fmt: skip
_OPENERS = (
    "and ",
    "but ",
    "or ",
    "also ",
    "so ",
    "what about",
    "how about",
    "then ",
    "and?",
    "why not",
    "ok ",
    "okay ",
)
_SUBJECTS = {"it", "they", "that", "this", "these", "those", "she", "he"}
_AUXILIARIES = {
    "is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should",
    "has", "have", "had", "may", "might", "must",
}  # fmt: skip
_QUESTION_WORDS = _AUXILIARIES | {"what", "how", "why", "who", "whom", "whose", "when", "where", "which", "i", "my"}
# Openings and endings of elliptical questions ("for rosacea too?", "even if it's oily?").
_LEADING = {
    "for", "from", "with", "without", "before", "after", "during", "on", "in", "at", "by", "about", "compared",
    "versus", "vs", "than", "instead", "plus", "even", "besides", "between", "against", "like", "into", "over",
    "under", "through", "within", "beyond", "until", "since", "per", "via",
}  # fmt: skip
_INTERJECTION = re.compile(
    r"^((haha+|lol|hmm+|ok(ay)?|oh|ah|wait|well|yes|yeah|right|alright|sure|thanks|thank you|cool|great|got it|i see)"
    r"\b[\s,.!:;\u2013\u2014-]*)+",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b[A-Z][a-z]+(\s+[A-Z][a-z]+)+\b")  # "Sophia Moradi": a name is a subject of its own
_POSSESSIVES = {"his", "her", "hers", "their", "theirs", "him", "them", "its"}
_ADVERBS = {"right", "just", "only", "even", "maybe", "also", "still", "mostly"}
_CONJUNCTIONS = {"so", "and", "but", "then", "wait", "ok", "okay", "well"}
_TRAILING = {"too", "then", "again", "instead", "either", "also", "though"}
# Words of a question that name no subject of their own ("how often?", "what changed?"); stemmed
# on first use (the stemmer and stop words load with bm25s, not at import: start-up time).
_GENERIC_WORDS = (
    "change changed work works help use used happen mean differ difference cost costs take make need say good better "
    "best result results effect effects thing things way time long price worth safe right kind type part much many "
    "often exactly really actually truly basically source sources"
)


# Words that frame a question about a word rather than name its subject ("What does Obersee
# mean?", "the translation of Oude Maas"): a passage that gives the meaning seldom repeats them,
# so in such a question (`_MEANING`) they do not count against how much of it the passages hold.
_FRAME_WORDS = "mean means meaning meant translation translate translated translates stand stands called"


@functools.cache
def _stems(words: str) -> frozenset[str]:
    """A word list's stemmed content terms, computed once per list."""
    return frozenset(content_terms(words))


@dataclass(frozen=True)
class Evidence:
    """What the abstention rule looks at (see docs/how-it-works.md, "Abstention")."""

    sentence: float  # cosine of the closest sentence in the top passages to the question
    known: float  # share of the question's content terms that occur anywhere in the articles
    coverage: float  # share of them found in the top three passages (with their titles)
    # The question's least-matched content word piece: its best cosine among the top passages'
    # word pieces. Low when the question names something the passages never touch ("Botox").
    weakest_word: float = 1.0


@dataclass(frozen=True)
class Abstention:
    """When to say the articles don't answer.

    Answer when some sentence is close to the question in meaning; or, for names and rare
    terms the model knows little about, when every content term of the question occurs in the
    articles, the top passages hold most of them, and the closest sentence is not far off.
    Either way, not when a word of the question matches nothing in the top passages and no
    sentence is very close: the question is then about something else ("How long does Botox
    last?" shares "how long" and "skin" with the articles, not its subject).
    Calibrated on tests/data/questions*.jsonl and offtopic*.jsonl (docs/evaluation.md).
    """

    sentence: float = 0.46
    named_sentence: float = 0.20
    named_coverage: float = 0.6
    unmatched_word: float = 0.29
    unmatched_sentence: float = 0.60

    def decide(self, e: Evidence) -> bool:
        if e.weakest_word < self.unmatched_word and e.sentence < self.unmatched_sentence:
            return False
        if e.sentence >= self.sentence:
            return True
        return e.known >= 1.0 and e.coverage >= self.named_coverage and e.sentence >= self.named_sentence


def is_follow_up(question: str, common: Callable[[set[str]], set[str]] | None = None) -> bool:
    """Whether a question leans on the conversation rather than standing alone.

    A follow-up opens like one ("and for hair?"), asks about an unnamed subject ("is it safe?",
    "does that work on oily skin?"), or is a fragment ("how often?", "morning or night?", "for
    rosacea too?", "who describes them as packages?"). A question that names what the library is
    about (`common`: the terms most of its passages hold, such as "exosomes") stands alone, even
    with a pronoun or a "too" in it ("What do exosomes carry inside them?")."""
    original = _INTERJECTION.sub("", question.strip())  # "haha ok, and pineapple?" -> "and pineapple?"
    text = original.lower()
    tokens = [w.lower() for w in words(text)]
    if not tokens:
        return False
    if text.startswith(_OPENERS):
        return True
    # A clause that asks about a subject it does not name, none named before it in the question
    # either: "is it safe?", "..., so are they made by stem cells?", "besides hair, what do they do?"
    before = ""
    for clause in re.split(r"\s*[,;:\u2013\u2014-]\s+", text):
        lead = [w for w in words(clause)]
        while lead and lead[0] in _CONJUNCTIONS:
            lead = lead[1:]
        asked = " ".join(lead) + " "
        extraposed = re.match(r"^\w+ it ((\w+ ){1,3}(to|if|when|that|whether) |worth )", asked)  # "is it worth ..."
        named_before = before
        unnamed = len(lead) > 1 and lead[0] in _AUXILIARIES and lead[1] in _SUBJECTS and not extraposed
        if not unnamed:
            found = re.search(r"\b(what|how|why|where|when) \w+ (they|these|those|she|he)\b", asked)
            unnamed, named_before = bool(found), before + " " + asked[: found.start()] if found else before
        if unnamed and not (common is not None and named_before.strip() and common(content_terms(named_before))):
            return True
        before += " " + clause
    first = next((t for t in tokens if t not in _ADVERBS), tokens[0])  # "right after washing?"
    if first in _LEADING and len(tokens) <= 5:
        return True  # "for which skin types?"
    # Someone's or something's, with nothing named before it: "what's his analogy for exosomes?"
    owner = next((i for i, t in enumerate(tokens) if t in _POSSESSIVES), None)
    if owner is not None and not (common is not None and common(content_terms(" ".join(tokens[:owner])))):
        return True
    terms = content_terms(text) - _stems(_GENERIC_WORDS)
    if common is not None and common(terms):
        return False
    elliptical = tokens[-1] in _TRAILING or text.rstrip(" ?!.").endswith("as well")
    vague = len(tokens) <= 2 and any(
        t in _QUESTION_WORDS or not content_terms(t) - _stems(_GENERIC_WORDS) for t in tokens
    )
    if first in _LEADING or elliptical or not terms or vague:  # "how exactly", "what changed?"
        return True
    if tokens[0] not in _QUESTION_WORDS and len(tokens) <= 4 and not _NAME.search(original):
        return True  # a fragment without a question of its own: "RNA?", "storage requirements?"
    return any(t in _PRONOUNS for t in tokens)


def resolve(question: str, history: Sequence[str], common: Callable[[set[str]], set[str]] | None = None) -> str:
    """The text to search: the question alone, or joined to the previous one for a follow-up."""
    previous = [h.strip() for h in history if h and h.strip()]
    if not previous or not is_follow_up(question, common):
        return question.strip()
    return f"{previous[-1]} {question.strip()}"


def evidence(
    query: str,
    query_vector: np.ndarray,
    hits: Sequence[Hit],
    sentences,
    lexical,
    *,
    word_matches: np.ndarray | None = None,
) -> Evidence:
    """Measure how well the hits answer: best sentence similarity, term coverage and, from
    `word_matches` (each question word piece's best cosine in the hits), the weakest word."""
    best = max((float((vecs @ query_vector).max()) for _, vecs in sentences if len(vecs)), default=0.0)
    weakest = float(word_matches.min()) if word_matches is not None and len(word_matches) else 1.0
    terms = content_terms(query)
    if not terms:
        return Evidence(best, 0.0, 0.0, weakest)
    seen: set[str] = set()
    for hit in hits[:3]:
        seen |= content_terms(hit.article.title + " " + hit.text)
    subject = ((terms - _stems(_FRAME_WORDS)) or terms) if _MEANING.search(query) else terms
    return Evidence(best, len(lexical.known(subject)) / len(subject), len(subject & seen) / len(subject), weakest)


def subject_matches(matches: np.ndarray | None, query: str, words_of: Callable[[str], list[str]] | None):
    """Each question word piece's best match (`evidence`'s `word_matches`) with the pieces of
    frame words left out: "translation" in "the translation of Oude Maas" matches nothing in
    the passage that translates it, and says nothing about whether the articles cover it."""
    frame = _stems(_FRAME_WORDS)
    if matches is None or words_of is None or not _MEANING.search(query) or not frame & content_terms(query):
        return matches
    words = words_of(query)
    if len(words) != len(matches):
        return matches
    keep = np.array([not (t and t <= frame) for t in map(content_terms, words)])
    return matches[keep] if keep.any() else matches


def highlight(
    hits: Sequence[Hit],
    query: str,
    query_vector: np.ndarray,
    sentences: Sequence[tuple[list[tuple[int, int]], np.ndarray]],
    *,
    question: str | None = None,
    token_matches: Sequence[np.ndarray | None] = (),
) -> list[Hit]:
    """Mark in each hit the sentence that best answers the query (offsets into hit.text).

    `sentences` gives, per hit, its sentence spans and their unit vectors. A sentence scores its
    cosine similarity to the question, plus LEXICAL_WEIGHT times the share of the question's
    content terms in it, plus TYPE_WEIGHT when it holds the kind of thing asked for (a duration
    for "how long", a year for "when", a place for "where", a person for "who", a number for "how
    many"), plus TOKEN_WEIGHT times how well the question's word pieces find their match among the
    sentence's (`token_matches`, per hit, where given); a sentence that is itself a question is
    no answer. The sentence next to the best one is marked with it when it scores within
    PAIR_MARGIN.
    """
    query_terms = content_terms(query)
    wanted = answer_type(question or query)
    out: list[Hit] = []
    matches = list(token_matches) + [None] * (len(hits) - len(token_matches))
    for hit, (spans, vectors), matched in zip(hits, sentences, matches):
        if not spans:
            out.append(hit)
            continue
        sims = vectors @ query_vector.reshape(-1)
        if matched is not None and len(matched) == len(spans):
            sims = sims + TOKEN_WEIGHT * matched
        best, best_score, scores = 0, -1e9, []
        asks = [hit.text[s:e].rstrip().endswith("?") for s, e in spans]  # a question restates, it does not answer
        for i, (s, e) in enumerate(spans):
            sentence = hit.text[s:e]
            cover = len(query_terms & content_terms(sentence)) / len(query_terms) if query_terms else 0.0
            score = float(sims[i]) + LEXICAL_WEIGHT * cover
            if wanted is not None and wanted.search(sentence):
                score += TYPE_WEIGHT
            if asks[i]:
                # Its word-piece match is no merit either.
                score -= QUESTION_PENALTY + (TOKEN_WEIGHT * float(matched[i]) if matched is not None else 0.0)
            scores.append(score)
            if score > best_score:
                best, best_score = i, score
        start, end = spans[best]
        # A neighbour that scores nearly as well is shown too: the answer often sits in the
        # sentence after the one that restates the question ("...a straightening program." /
        # "The rate of flow was increased...").
        near = [
            k
            for k in (best - 1, best + 1)
            if 0 <= k < len(spans)
            and scores[k] >= best_score - PAIR_MARGIN
            and not asks[k]
            and max(end, spans[k][1]) - min(start, spans[k][0]) <= PAIR_CHARS
        ]
        if near:
            k = max(near, key=lambda k: scores[k])
            start, end = min(start, spans[k][0]), max(end, spans[k][1])
        out.append(replace(hit, highlight_start=start, highlight_end=end, highlight_score=round(best_score, 4)))
    return out


def sentence_token_match(
    spans: Sequence[tuple[int, int]],
    query_tokens: np.ndarray,
    passage_tokens: np.ndarray,
    offsets: Sequence[tuple[int, int]],
) -> np.ndarray | None:
    """For each sentence (`spans`, offsets into the passage): the mean over the question's word
    pieces of their best cosine among the sentence's word pieces (`passage_tokens`, unit rows,
    at `offsets` in the passage). None when the pieces do not line up with the passage."""
    if len(offsets) != len(passage_tokens) or not len(query_tokens):
        return None
    cosines = query_tokens @ passage_tokens.T
    starts = np.array([a for a, _ in offsets])
    ends = np.array([b for _, b in offsets])
    out = np.zeros(len(spans), np.float32)
    for i, (s, e) in enumerate(spans):
        inside = np.nonzero((starts >= s) & (ends <= e))[0]
        if len(inside):
            out[i] = float(cosines[:, inside].max(axis=1).mean())
    return out


# Questions that ask for a judgement, and the words a sentence that passes one uses.
_JUDGEMENT = re.compile(
    r"\b(the (best|worst|top|safest|most effective)(?! (way|ways|time|method|approach|order|moment|place|step))"
    r"|recommend|should i (buy|get|try|choose)"
    r"|worth (it|the money|buying)|(is|are) ([\w-]+ ){1,3}(safe|dangerous|harmful))\b",
    re.IGNORECASE,
)
_VERDICT = re.compile(
    r"\b(best|worst|better|top|safe|safer|safest|safety|unsafe|risks?|dangerous|harmful|side effects?"
    r"|recommend\w*|effective|worth|choose|prefer\w*|ideal|superior|avoid|damag\w*|harm\w*|toxic\w*"
    r"|hazard\w*|irritat\w*|injur\w*|deadly|lethal|poison\w*|gentle|approved)\b",
    re.IGNORECASE,
)


def answer_type(question: str) -> re.Pattern | None:
    """What a factoid question asks for, as a pattern an answering sentence would match."""
    for asks, looks_like in _ANSWER_TYPES:
        if asks.search(question):
            return looks_like
    return None


def compose(
    question: str,
    query: str,
    hits: Sequence[Hit],
    *,
    evidence: Evidence,
    rule: Abstention,
    history: Sequence[str] = (),
) -> Answer:
    """Build the Answer: found or not, the short answer text and a one-line reason."""
    found = bool(hits) and rule.decide(evidence)
    confidence = round(float(max(0.0, min(1.0, evidence.sentence))), 4)
    judged = _JUDGEMENT.search(question)
    if found and judged and not _VERDICT.search(hits[0].highlight or hits[0].text):
        # "What is the best moisturizer?" answered by "Allow the serum to absorb before moisturizer"
        # is a confident miss: the passage is near the subject but passes no judgement on it.
        asked = judged.group(0).lower()
        said = (
            "whether it is safe"
            if re.search(r"safe|dangerous|harmful", asked)
            else "which one is best"
            if re.search(r"best|worst|top|most effective", asked)
            else "which one to choose"
        )
        text, found = "", False
        reason = f"The articles don't settle this: the closest passage does not say {said} (nearest passages below)."
    elif found:
        text = hits[0].highlight or hits[0].text
        reason = ""
    elif not hits:
        text, reason = "", "There are no articles to search yet: add some first."
    elif evidence.sentence >= rule.sentence:
        text = ""
        reason = (
            "The articles don't cover this: a word of the question matches nothing in the best passages "
            f"(its closest match {evidence.weakest_word:.2f}; best sentence similarity {evidence.sentence:.2f})."
        )
    else:
        text = ""
        reason = (
            "The articles don't cover this: no sentence in them comes close to the question "
            f"(best similarity {evidence.sentence:.2f}; {evidence.coverage:.0%} of its key terms in the best passages)."
        )
    return Answer(
        question=question,
        found=found,
        text=text,
        hits=tuple(hits),
        confidence=confidence,
        query=query,
        reason=reason,
        history=tuple(history),
    )


# Questions about an article rather than about its subject: who wrote it, when it came out.
# "Who wrote ..." names the writing it asks about ("the retinol article", "this", "it"): "Who
# first wrote about the Rhine's border?" asks about history, not about the article.
_WRITING = (
    r"(article|paper|report|piece|post|study|book|booklet|handbook|manual|guide|document|pdf|file|blog|page|story"
    r"|review|essay|text|chapter|thesis|newsletter|leaflet|brochure)s?\b|(this|it)\b(?!')|that\W*$"
)
_ASKS_WRITER = re.compile(
    rf"\bwho\b.*\b(wrote|writes?|written|authored|penned)\b.*\b({_WRITING})|\bby whom\b.*\b({_WRITING})",
    re.IGNORECASE,
)
_ASKS_AUTHOR = re.compile(r"\b(author|writer)s?\b.*\b(of|behind)\b|\bwho\b.*\b(author|writer)s?\b", re.IGNORECASE)
_ASKS_DATE = re.compile(
    r"\b(when|what (year|date|day|month))\b.*\b(published|written|released|posted|dated|came out|come out|appeared)\b"
    r"|\b(publication|release) date\b|\bhow old is\b",
    re.IGNORECASE,
)
_ABOUT = (
    "wrote write writes written author authors writer writers authored penned published publish publication "
    "released release posted dated date year article articles paper papers report reports book document "
    "piece post study came come appeared old"
)


def about_article(question: str) -> str | None:
    """ "author" or "date" when the question asks who wrote an article or when it came out."""
    if _ASKS_WRITER.search(question) or _ASKS_AUTHOR.search(question):
        return "author"
    if _ASKS_DATE.search(question):
        return "date"
    return None


def byline_answer(
    question: str, query: str, asked: str, hits: Sequence[Hit], first: Hit, *, history: Sequence[str] = ()
) -> Answer | None:
    """The answer to "who wrote / when was ... published" from what the article says of itself
    (its metadata: a PDF's or DOCX's properties, an HTML page's byline, front matter), citing the
    article's first passage; or an honest "it does not say". `first` is the first passage of the
    top hit's article; None when the rest of the question does not name that article."""
    article = first.article
    topic = content_terms(query) - _stems(_ABOUT)
    if topic:
        named = content_terms(article.title + " " + article.text[:50_000])
        if len(topic & named) < 0.5 * len(topic):
            return None
    elif len({h.article.id for h in hits}) > 1:
        return None  # "who wrote it?" with several articles in view: which one is not said
    said = article.author if asked == "author" else _spelled_date(article.date)
    if not said:
        what = "who wrote it" if asked == "author" else "when it was published"
        return Answer(
            question=question,
            found=False,
            text="",
            hits=tuple(hits),
            query=query,
            reason=f"“{article.title}” does not say {what}.",
            history=tuple(history),
        )
    verb = "was written by" if asked == "author" else "was published on"
    top = replace(first, rank=1)
    rest = [replace(h, rank=i) for i, h in enumerate((h for h in hits if h.chunk.key != first.chunk.key), 2)]
    return Answer(
        question=question,
        found=True,
        text=f"“{article.title}” {verb} {said.rstrip('. ')}.",
        hits=(top, *rest[: len(hits) - 1]),
        confidence=1.0,
        query=query,
        history=tuple(history),
    )


_MONTHS = "January February March April May June July August September October November December".split()


def _spelled_date(date: str | None) -> str | None:
    """ "2025-04-17" -> "17 April 2025"; other forms as they are."""
    match = re.fullmatch(r"(\d{4})-(\d{2})(?:-(\d{2}))?(T.*)?", date or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        return date
    year, month, day = match.group(1), _MONTHS[int(match.group(2)) - 1], match.group(3)
    return f"{int(day)} {month} {year}" if day else f"{month} {year}"
