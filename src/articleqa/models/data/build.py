# Data preparation as it was run once (paths of the machine that ran it); SOURCES.md tells the story.
"""Build /work/data/qa/*.jsonl, stats.json from the raw sources.

Sources (all read from fetched bare git mirrors under /work/.mirror):
  squad_v1_train : rajpurkar/SQuAD-explorer gh-pages history, explore/1.1/train/*.html
                   (parsed by parse_explorer.py into raw/squad1_explorer.jsonl)
  squad_v2_train : PhongNTDo/guide_train_MRC_transformers train-v2.0.json (first 10
                   articles of the official SQuAD 2.0 train file, complete JSON)
  wikiqa_train   : rohantilva/Google-Like-Question-Answering-System
                   data/WikiQA/WikiQA-train.tsv.gz (official WikiQA train split)
"""

import collections
import csv
import gzip
import io
import json
import re
import subprocess
import sys

sys.path.insert(0, "/work/data/qa/scripts")
import spanpick  # noqa: E402

OUT = "/work/data/qa"

DEV_TITLES = set(
    """Super_Bowl_50 Warsaw Normans Nikola_Tesla Computational_complexity_theory Teacher
Martin_Luther Southern_California Sky_(United_Kingdom) Victoria_(Australia) Huguenot Steam_engine Oxygen
1973_oil_crisis Apollo_program European_Union_law Amazon_rainforest Ctenophora Fresno,_California
Packet_switching Black_Death Geology Newcastle_upon_Tyne Victoria_and_Albert_Museum
American_Broadcasting_Company Genghis_Khan Pharmacy Immune_system Civil_disobedience Construction
Private_school Harvard_University Jacksonville,_Florida Economic_inequality Doctor_Who
University_of_Chicago Yuan_dynasty Kenya Intergovernmental_Panel_on_Climate_Change Chloroplast
Prime_number Rhine Scottish_Parliament Islamism Imperialism United_Methodist_Church
French_and_Indian_War Force""".split()
)
DEV_TITLES_NORM = {t.lower() for t in DEV_TITLES}


def norm_title(t):
    return re.sub(r"\s+", "_", (t or "").strip()).lower()


def git_show(gitdir, spec):
    return subprocess.run(["git", "--git-dir", gitdir, "show", spec], check=True, capture_output=True).stdout


class Sink:
    """Collects records for one source, applying exclusions, verification and
    cross-source dedup (question + context)."""

    seen = set()

    def __init__(self, source):
        self.source = source
        self.records = []
        self.dropped = collections.Counter()

    def add(self, rec):
        rec["source"] = self.source
        if norm_title(rec["title"]) in DEV_TITLES_NORM:
            self.dropped["dev_title"] += 1
            return
        if "rhine" in rec["context"].lower():
            self.dropped["context_mentions_Rhine"] += 1
            return
        ok_answers = []
        for a in rec["answers"]:
            s = a["start"]
            if s is not None and rec["context"][s : s + len(a["text"])] == a["text"]:
                ok_answers.append(a)
            else:
                self.dropped["answer_offset_fixed_or_dropped"] += 1
                s2 = rec["context"].find(a["text"]) if a["text"] else -1
                if s2 >= 0:
                    ok_answers.append({"text": a["text"], "start": s2})
        rec["answers"] = ok_answers
        if not rec["is_impossible"] and rec["kind"] != "yesno" and not ok_answers:
            self.dropped["no_valid_answer"] += 1
            return
        key = (re.sub(r"\s+", " ", rec["question"].strip().lower()), rec["context"])
        if key in Sink.seen:
            self.dropped["duplicate_question_context"] += 1
            return
        Sink.seen.add(key)
        rec.setdefault("history", [])
        self.records.append(
            {
                k: rec[k]
                for k in ("id", "source", "title", "context", "question", "answers", "is_impossible", "kind", "history")
            }
        )

    def write(self):
        with open(f"{OUT}/{self.source}.jsonl", "w") as f:
            for r in self.records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")


def load_v2():
    g = "/work/.mirror/PhongNTDo+guide_train_MRC_transformers/repo"
    return json.loads(git_show(g, "HEAD:train-v2.0.json"))


def build_squad1(v2, stats_extra):
    gold = {}
    for art in v2["data"]:
        for p in art["paragraphs"]:
            for q in p["qas"]:
                if not q["is_impossible"]:
                    gold.setdefault((p["context"], q["question"]), (q["id"], q["answers"][0]))
    sink = Sink("squad_v1_train")
    n_gold = n_unique = n_first = 0
    for line in open(f"{OUT}/raw/squad1_explorer.jsonl"):
        r = json.loads(line)
        ctx, q, ans = r["context"], r["question"], r["answer_texts"][0]
        g = gold.get((ctx, q))
        if g and g[1]["text"] == ans:
            rid, start = g[0], g[1]["answer_start"]
            n_gold += 1
        else:
            rid = f"squad1-explorer:{r['file_title']}:{r['p_idx']}:{r['q_idx']}"
            occ = spanpick.occurrences(ctx, ans)
            start = occ[0] if occ else None
            if len(occ) == 1:
                n_unique += 1
            else:
                n_first += 1
        sink.add(
            {
                "id": rid,
                "title": r["title"],
                "context": ctx,
                "question": q,
                "answers": [{"text": ans, "start": start}],
                "is_impossible": False,
                "kind": "extractive",
            }
        )
    stats_extra["squad_v1_train"] = {
        "answer_start_from_official_json": n_gold,
        "answer_start_unique_occurrence": n_unique,
        "answer_start_first_of_several_occurrences": n_first,
    }
    return sink


def build_squad2(v2):
    sink = Sink("squad_v2_train")
    for art in v2["data"]:
        for p in art["paragraphs"]:
            for q in p["qas"]:
                imp = bool(q["is_impossible"])
                answers = [] if imp else [{"text": a["text"], "start": a["answer_start"]} for a in q["answers"][:1]]
                sink.add(
                    {
                        "id": q["id"],
                        "title": art["title"],
                        "context": p["context"],
                        "question": q["question"],
                        "answers": answers,
                        "is_impossible": imp,
                        "kind": "extractive",
                    }
                )
    return sink


def build_wikiqa():
    g = "/work/.mirror/rohantilva+Google-Like-Question-Answering-System/repo"
    raw = gzip.decompress(git_show(g, "HEAD:data/WikiQA/WikiQA-train.tsv.gz")).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw), delimiter="\t", quoting=csv.QUOTE_NONE))
    byq = collections.OrderedDict()
    for r in rows:
        byq.setdefault(r["QuestionID"], []).append(r)
    sink = Sink("wikiqa_train")
    for qid, rs in byq.items():
        parts, answers, pos = [], [], 0
        for r in rs:
            sent = r["Sentence"]
            if parts:
                pos += 1
            if r["Label"] == "1":
                answers.append({"text": sent, "start": pos})
            parts.append(sent)
            pos += len(sent)
        ctx = " ".join(parts)
        sink.add(
            {
                "id": f"wikiqa:{qid}",
                "title": rs[0]["DocumentTitle"],
                "context": ctx,
                "question": rs[0]["Question"],
                "answers": answers,
                "is_impossible": not answers,
                "kind": "sentence",
            }
        )
    return sink


def main():
    extra = {}
    v2 = load_v2()
    sinks = [build_squad1(v2, extra), build_squad2(v2), build_wikiqa()]
    for extra_mod in sys.argv[1:]:
        mod = __import__(extra_mod)
        sinks.append(mod.build(Sink))
    stats = {"sources": {}, "total_questions": 0}
    all_titles = set()
    for s in sinks:
        s.write()
        titles = {r["title"] for r in s.records}
        all_titles |= {(s.source.split("_")[0] if s.source.startswith("squad") else s.source, t) for t in titles}
        ans = sum(not r["is_impossible"] for r in s.records)
        stats["sources"][s.source] = {
            "questions": len(s.records),
            "distinct_titles": len(titles),
            "distinct_contexts": len({r["context"] for r in s.records}),
            "answerable": ans,
            "unanswerable": len(s.records) - ans,
            "kinds": dict(collections.Counter(r["kind"] for r in s.records)),
            "dropped": dict(s.dropped),
            **extra.get(s.source, {}),
        }
        stats["total_questions"] += len(s.records)
    stats["distinct_titles_all_sources"] = len(all_titles)
    stats["distinct_squad_titles"] = len({t for src, t in all_titles if src == "squad"})
    stats["answerable_total"] = sum(v["answerable"] for v in stats["sources"].values())
    stats["unanswerable_total"] = sum(v["unanswerable"] for v in stats["sources"].values())
    json.dump(stats, open(f"{OUT}/stats.json", "w"), indent=2, ensure_ascii=False)
    print(json.dumps(stats, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
