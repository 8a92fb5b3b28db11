# Data preparation as it was run once (paths of the machine that ran it); SOURCES.md tells the story.
"""Parse SQuAD-explorer per-article training HTML pages (rajpurkar/SQuAD-explorer,
explore/1.1/train/*.html at an old gh-pages commit) into raw records.

Output: raw/squad1_explorer.jsonl with one record per question:
 {title, p_idx, q_idx, context, question, answer_texts}
Answer start offsets are NOT in the HTML; they are resolved later (resolve.py).
"""

import html
import json
import re
import subprocess

GIT = "/work/.mirror/rajpurkar+SQuAD-explorer/repo"
COMMIT = "0b3c8e824b9fd05ad69e9b6b590966e4aade2baf"
PREFIX = "explore/1.1/train/"


def git(*args):
    return subprocess.run(["git", "--git-dir", GIT, *args], check=True, capture_output=True).stdout


para_re = re.compile(
    r'<div class="para-wrap">(.*?)(?=<div class="para-wrap">|</div></div></div></div></div></div>)', re.S
)
pre_re = re.compile(r"<pre>(.*?)</pre>", re.S)
qa_re = re.compile(r'<div class="qa-wrap">(.*?)</ol></div>', re.S)
q_re = re.compile(r'<strong class="question">(.*?)</strong>', re.S)
a_re = re.compile(r'<span class="answer">(.*?)</span>', re.S)
title_re = re.compile(r'<h1 id="title">(.*?)</h1>', re.S)


def main():
    names = git("ls-tree", "-r", "-z", "--name-only", COMMIT, PREFIX).decode("utf-8").split("\0")
    names = [n for n in names if n.endswith(".html") and not n.endswith("index.html")]
    out = open("/work/data/qa/raw/squad1_explorer.jsonl", "w")
    n_art = n_q = 0
    for name in sorted(names):
        raw = git("cat-file", "-p", f"{COMMIT}:{name}").decode("utf-8")
        t = title_re.search(raw)
        title = html.unescape(t.group(1)) if t else name[len(PREFIX) : -5]
        file_title = name[len(PREFIX) : -5]
        body = raw[raw.find('<div class="para-wrap">') :]
        chunks = body.split('<div class="para-wrap">')[1:]
        n_art += 1
        for pi, ch in enumerate(chunks):
            pm = pre_re.search(ch)
            ctx = html.unescape(pm.group(1))
            for qi, qm in enumerate(qa_re.finditer(ch)):
                blk = qm.group(1)
                q = html.unescape(q_re.search(blk).group(1))
                answers = [html.unescape(a) for a in a_re.findall(blk)]
                out.write(
                    json.dumps(
                        {
                            "title": title,
                            "file_title": file_title,
                            "p_idx": pi,
                            "q_idx": qi,
                            "context": ctx,
                            "question": q,
                            "answer_texts": answers,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
                n_q += 1
    print("articles", n_art, "questions", n_q)


if __name__ == "__main__":
    main()
