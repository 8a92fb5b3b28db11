# Data preparation as it was run once (paths of the machine that ran it); SOURCES.md tells the story.
"""Choose the character offset of an answer string inside a context when the
source gives only the answer text (SQuAD-explorer HTML pages).

If the text occurs once, that offset is exact. If it occurs several times, we
score each occurrence by how many of the question's content words appear near
it (same sentence weighted higher, then a +-N char window) and take the best,
earliest on ties.
"""

import re

STOP = set(
    """a an the of in on at to for from by with and or but is are was were be been being
what which who whom whose when where why how did do does done has have had that this these those
it its as into than then there their they them he she his her him i you we our your not no
can could would should may might will shall about after before during over under between""".split()
)

WORD = re.compile(r"[\w']+", re.U)


def toks(s):
    return [w.lower() for w in WORD.findall(s)]


def content(s):
    return {w for w in toks(s) if w not in STOP and len(w) > 1}


def occurrences(ctx, ans):
    out, i = [], ctx.find(ans)
    while i != -1:
        out.append(i)
        i = ctx.find(ans, i + 1)
    return out


_sent_end = re.compile(r"(?<=[.!?])\s+")


def sentence_bounds(ctx):
    bounds, start = [], 0
    for m in _sent_end.finditer(ctx):
        bounds.append((start, m.start()))
        start = m.end()
    bounds.append((start, len(ctx)))
    return bounds


def pick(ctx, question, ans, window=120):
    occ = occurrences(ctx, ans)
    if not occ:
        return None, 0
    if len(occ) == 1:
        return occ[0], 1
    q = content(question) - content(ans)
    sb = sentence_bounds(ctx)
    best, best_score = occ[0], -1.0
    for o in occ:
        sent = next(((a, b) for a, b in sb if a <= o < b), (0, len(ctx)))
        s_words = content(ctx[sent[0] : sent[1]])
        w_words = content(ctx[max(0, o - window) : o] + " " + ctx[o + len(ans) : o + len(ans) + window])
        score = 2.0 * len(q & s_words) + len(q & w_words)
        if score > best_score:
            best, best_score = o, score
    return best, len(occ)
