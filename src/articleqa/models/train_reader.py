"""Train the answer reader shipped in models/reader/: a span reader on the bundled all-MiniLM-L6-v2.

The reader reads a question and one passage together and scores every span of the passage as
its answer, and "no answer here" (the [CLS] position, as in SQuAD 2.0). Trained on the SQuAD
v1.1 training split (CC BY-SA 4.0; where it comes from: models/reader/TRAINING.md), with
windows of a paragraph that miss the answer and paragraphs of the same article as examples of
"no answer here". Runs on a CPU; checkpoints every few minutes and resumes where it stopped.

    python -m articleqa.models.train_reader prepare --data DIR --work WORK
    python -m articleqa.models.train_reader train --work WORK [--hours 3] [--threads 2]
    python -m articleqa.models.train_reader evaluate --work WORK [--onnx FILE]
    python -m articleqa.models.train_reader export --work WORK --out src/articleqa/models/reader

Nothing here is imported by the package at run time (it needs torch; answering does not).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

SEQ_MAX = 192  # question and passage together, in word pieces (a passage is at most 200 words)
QUESTION_MAX = 40
STRIDE = 96
SEED = 13
# Articles kept out of training to check it (titles of the SQuAD v1.1 *training* split).
VALIDATION_ARTICLES = 12


# -- data -------------------------------------------------------------------------------------------


def _tokenizer():
    from tokenizers import Tokenizer

    from articleqa.embed.model import bundled_model_path

    tok = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


_LEADS = re.compile(
    r"^(what|which|who|whom|when|where|how many|how much|how)\s+(is|was|are|were|did|does|do)\s+(the\s+)?", re.I
)


def typed(question: str, rng: random.Random) -> str:
    """The question as a person might type it: sometimes without its question mark, sometimes
    cut to its keywords, sometimes with a typo (the tokenizer lower-cases anyway)."""
    q = question.strip()
    if rng.random() < 0.3:
        q = q.rstrip("?").rstrip()
    if rng.random() < 0.1:
        q = _LEADS.sub("", q) or q
    if rng.random() < 0.1:
        words = q.split()
        long = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
        if long:
            i = rng.choice(long)
            w = words[i]
            j = rng.randrange(1, len(w) - 2)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if rng.random() < 0.5 else w[:j] + w[j + 1 :]
            q = " ".join(words)
    return q


def _windows(n: int, room: int) -> list[tuple[int, int]]:
    """Token windows [a, b) of a passage of n tokens, at most `room` long, overlapping by STRIDE."""
    if n <= room:
        return [(0, n)]
    out, a = [], 0
    while True:
        b = min(n, a + room)
        out.append((a, b))
        if b == n:
            return out
        a += min(STRIDE, room)


def _records(data: Path) -> list[dict]:
    rows = []
    for name in ("squad_v1_train.jsonl", "squad_v2_train.jsonl"):
        path = data / name
        if path.exists():
            with path.open(encoding="utf-8") as f:
                rows.extend(json.loads(line) for line in f)
    return rows


def prepare(data: Path, work: Path) -> None:
    """Tokenised windows with their answer positions, as arrays in WORK/features-*.npz."""
    rng = random.Random(SEED)
    tok = _tokenizer()
    rows = _records(data)
    titles = sorted({r["title"] for r in rows})
    rng.shuffle(titles)
    held = set(titles[:VALIDATION_ARTICLES])
    by_title: dict[str, list[str]] = {}
    for r in rows:
        contexts = by_title.setdefault(r["title"], [])
        if not contexts or contexts[-1] != r["context"]:
            contexts.append(r["context"])
    encoded: dict[str, object] = {}

    def passage(text: str, title: str):
        key = title + "\x00" + text
        if key not in encoded:
            encoded[key] = tok.encode(text, add_special_tokens=False)
        return encoded[key]

    splits = {"train": [], "validation": []}
    for r in rows:
        split = "validation" if r["title"] in held else "train"
        question = r["question"] if split == "validation" else typed(r["question"], rng)
        q = tok.encode(question, add_special_tokens=False).ids[:QUESTION_MAX]
        room = SEQ_MAX - len(q) - 3
        answers = r["answers"][:1]
        ctx = passage(r["context"], r["title"])
        spans = []
        for a in answers:
            s, e = a["start"], a["start"] + len(a["text"])
            toks = [i for i, (x, y) in enumerate(ctx.offsets) if x < e and y > s]
            if toks:
                spans.append((toks[0], toks[-1]))
        examples = []
        for a, b in _windows(len(ctx.ids), room):
            inside = [(s - a, e - a) for s, e in spans if s >= a and e < b]
            examples.append((ctx, a, b, inside[0] if inside else None))
        if split == "train":
            # Keep every window that holds the answer and one that does not (if any).
            positive = [x for x in examples if x[3] is not None]
            negative = [x for x in examples if x[3] is None]
            examples = positive + negative[:1] if positive else negative[:2]
            # Another paragraph of the same article: on topic, and (we check) without the answer.
            others = [c for c in by_title[r["title"]] if c != r["context"]]
            if others and rng.random() < 0.6:
                other = rng.choice(others)
                if not any(a["text"].lower() in other.lower() for a in r["answers"]):
                    octx = passage(other, r["title"])
                    a, b = rng.choice(_windows(len(octx.ids), room))
                    examples.append((octx, a, b, None))
        # As the product reads a passage: after its article's title ("Title: passage"), half the
        # time here so that the reader does not lean on it.
        title = tok.encode(r["title"].replace("_", " ") + ":", add_special_tokens=False).ids[:16]
        for ctx_enc, a, b, span in examples:
            lead = title if rng.random() < 0.5 else []
            b = min(b, a + room - len(lead))
            if span is not None and span[1] >= b - a:
                continue  # the title took the room the answer needed
            ids = [101, *q, 102, *lead, *ctx_enc.ids[a:b], 102]
            types = [0] * (len(q) + 2) + [1] * (len(lead) + b - a + 1)
            shift = len(q) + 2 + len(lead)
            start, end = (span[0] + shift, span[1] + shift) if span else (0, 0)
            splits[split].append((ids, types, start, end, r["id"], a))
    for split, feats in splits.items():
        lengths = np.array([len(f[0]) for f in feats], np.int32)
        flat = np.concatenate([np.array(f[0], np.int32) for f in feats])
        types = np.concatenate([np.array(f[1], np.int8) for f in feats])
        np.savez_compressed(
            work / f"features-{split}.npz",
            ids=flat,
            types=types,
            lengths=lengths,
            start=np.array([f[2] for f in feats], np.int32),
            end=np.array([f[3] for f in feats], np.int32),
            window=np.array([f[5] for f in feats], np.int32),
            question=np.array([f[4] for f in feats]),
        )
        print(f"{split}: {len(feats):,} windows, {sum(1 for f in feats if f[2]):,} holding the answer", flush=True)
    (work / "validation-articles.json").write_text(json.dumps(sorted(held), indent=1))
    digest = hashlib.sha256()
    for name in ("squad_v1_train.jsonl", "squad_v2_train.jsonl"):
        if (data / name).exists():
            digest.update((data / name).read_bytes())
    (work / "data.json").write_text(json.dumps({"sha256": digest.hexdigest(), "questions": len(rows)}, indent=1))


class Features:
    def __init__(self, path: Path) -> None:
        z = np.load(path)
        self.lengths = z["lengths"]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.ids, self.types = z["ids"], z["types"]
        self.start, self.end = z["start"], z["end"]

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, rows):
        import torch

        width = int(max(self.lengths[r] for r in rows))
        ids = np.zeros((len(rows), width), np.int64)
        types = np.zeros((len(rows), width), np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for i, r in enumerate(rows):
            a, b = self.offsets[r], self.offsets[r + 1]
            ids[i, : b - a] = self.ids[a:b]
            types[i, : b - a] = self.types[a:b]
            mask[i, : b - a] = 1
        return (
            torch.from_numpy(ids),
            torch.from_numpy(mask),
            torch.from_numpy(types),
            torch.from_numpy(self.start[rows].astype(np.int64)),
            torch.from_numpy(self.end[rows].astype(np.int64)),
        )


def batches(features: Features, size: int, seed: int) -> list[list[int]]:
    """Batches of similar lengths (little padding), in a shuffled order fixed by `seed`."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(features))
    out = []
    for i in range(0, len(order), size * 50):
        pool = order[i : i + size * 50]
        pool = pool[np.argsort(features.lengths[pool], kind="stable")]
        out.extend(pool[j : j + size].tolist() for j in range(0, len(pool), size))
    rng.shuffle(out)
    return out


# -- the model --------------------------------------------------------------------------------------


def build_model():
    import torch
    from transformers import BertModel

    from articleqa.embed.model import bundled_model_path

    class Reader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel.from_pretrained(str(bundled_model_path()), add_pooling_layer=False)
            self.span = torch.nn.Linear(self.bert.config.hidden_size, 2)

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
            logits = self.span(hidden)
            minus = (1 - attention_mask).to(logits.dtype) * -1e4
            return logits[..., 0] + minus, logits[..., 1] + minus

    return Reader()


def train(work: Path, hours: float, threads: int, batch_size: int = 32, lr: float = 8e-5, steps: int = 0) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    features = Features(work / "features-train.npz")
    model = build_model()
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)  # 12M of 23M weights: kept
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    checkpoint = work / "checkpoint.pt"
    state = {"step": 0, "epoch": 0, "position": 0, "total": None, "seconds": 0.0}
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
        print(f"resumed at step {state['step']}", flush=True)
    log = (work / "train.log").open("a")
    plan = batches(features, batch_size, SEED + state["epoch"])
    warmup = 300
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    started = time.monotonic()
    base_seconds = state["seconds"]
    last_save = time.monotonic()
    window_loss, window_n, window_t = 0.0, 0, time.monotonic()
    while True:
        if state["position"] >= len(plan):
            state["epoch"] += 1
            state["position"] = 0
            plan = batches(features, batch_size, SEED + state["epoch"])
        rows = plan[state["position"]]
        ids, mask, types, start, end = features.batch(rows)
        if steps and state["total"] != steps:
            # --steps on a resumed run shortens or lengthens the schedule from here on; the log says so
            note = f"schedule: {state['total']} -> {steps} steps at step {state['step']}"
            print(note, flush=True)
            log.write(note + "\n")
            state["total"] = steps
        if state["total"] is None and state["step"] == 20:
            per_step = (time.monotonic() - started) / 20
            state["total"] = int(hours * 3600 / per_step)
            print(f"{per_step:.2f} s a step: {state['total']} steps in {hours} h", flush=True)
        total = state["total"] or 10**9
        step = state["step"]
        scale = (step + 1) / warmup if step < warmup else max(0.0, 1 - (step - warmup) / max(1, total - warmup))
        for group in optimizer.param_groups:
            group["lr"] = lr * scale
        with torch.autocast("cpu", dtype=torch.bfloat16):
            s_logits, e_logits = model(ids, mask, types)
        loss = (loss_fn(s_logits.float(), start) + loss_fn(e_logits.float(), end)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        state["step"] += 1
        state["position"] += 1
        window_loss += float(loss.detach())
        window_n += 1
        done = state["total"] is not None and state["step"] >= state["total"]
        if window_n == 50 or done:
            now = time.monotonic()
            seconds = base_seconds + now - started
            line = (
                f"step {state['step']}/{state['total']} epoch {state['epoch']} loss {window_loss / window_n:.4f} "
                f"lr {lr * scale:.2e} {window_n * batch_size / (now - window_t):.1f} windows/s "
                f"{seconds / 3600:.2f} h"
            )
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()
            window_loss, window_n, window_t = 0.0, 0, now
        if time.monotonic() - last_save > 600 or done:
            state["seconds"] = base_seconds + time.monotonic() - started
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state}, tmp)
            os.replace(tmp, checkpoint)
            last_save = time.monotonic()
        if done:
            break
    log.close()


# -- checking and export --------------------------------------------------------------------------


def evaluate(work: Path, onnx: Path | None = None, limit: int = 3000) -> dict:
    from articleqa.query.answer.reader import best_span

    """Span exact match on validation windows that hold the answer, and how often "no answer"
    wins on windows that do not (by the margin best span - [CLS])."""
    feats = Features(work / "features-validation.npz")
    rows = list(range(min(limit, len(feats))))
    run = _onnx_runner(onnx) if onnx else _torch_runner(work)
    exact = have = null_right = nulls = 0
    for i in range(0, len(rows), 32):
        chunk = rows[i : i + 32]
        ids, mask, types, start, end = feats.batch(chunk)
        s_logits, e_logits = run(ids.numpy(), mask.numpy(), types.numpy())
        for k in range(len(chunk)):
            first = int(np.argmax(types[k].numpy() == 1)) if types[k].numpy().any() else 1
            last = int(mask[k].sum()) - 1
            score, a, b = best_span(s_logits[k], e_logits[k], first, last)  # the product's own search
            margin = score - (s_logits[k][0] + e_logits[k][0])
            if int(start[k]) > 0:
                have += 1
                exact += a == int(start[k]) and b == int(end[k])
            else:
                nulls += 1
                null_right += margin < 0
    return {
        "span_exact": exact / max(have, 1),
        "answerable": have,
        "no_answer_right": null_right / max(nulls, 1),
        "no_answer": nulls,
    }


def trained(build, work: Path):
    """The model `build()` makes, with the weights of WORK/checkpoint.pt, ready to run; and the
    checkpoint's training state (step, seconds)."""
    import torch

    model = build()
    saved = torch.load(work / "checkpoint.pt", weights_only=False)
    model.load_state_dict(saved["model"])
    model.eval()
    return model, saved["state"]


def _torch_runner(work: Path):
    import torch

    model, _ = trained(build_model, work)

    def run(ids, mask, types):
        with torch.no_grad():
            s, e = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types))
        return s.numpy(), e.numpy()

    return run


def _onnx_runner(path: Path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(ids, mask, types):
        return session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})

    return run


def to_onnx(model, float_path: Path, out: Path, outputs: dict[str, dict[int, str]]) -> None:
    """`model` (reading input_ids, attention_mask, token_type_ids) as float32 ONNX at `float_path`,
    and as OUT/model.onnx with int8 weights beside the bundled tokenizer."""
    import shutil

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from articleqa.embed.model import bundled_model_path

    ids = torch.tensor([[101, 2054, 102, 1996, 3899, 102]])
    names = ("input_ids", "attention_mask", "token_type_ids")
    torch.onnx.export(
        model,
        (ids, torch.ones_like(ids), torch.tensor([[0, 0, 0, 1, 1, 1]])),
        str(float_path),
        input_names=list(names),
        output_names=list(outputs),
        dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, **outputs},
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(float_path), str(out / "model.onnx"), weight_type=QuantType.QInt8)
    shutil.copyfile(bundled_model_path() / "tokenizer.json", out / "tokenizer.json")


def export(work: Path, out: Path, check: bool = True) -> None:
    """OUT/model.onnx (int8 weights) beside the tokenizer and meta.json; with `check`, the span
    exact match of the float32 and int8 models on the validation windows."""

    model, state = trained(build_model, work)
    out.mkdir(parents=True, exist_ok=True)
    float_path = work / "reader-float32.onnx"
    outputs = {"start_logits": {0: "batch", 1: "tokens"}, "end_logits": {0: "batch", 1: "tokens"}}
    to_onnx(model, float_path, out, outputs)
    meta = {
        "format": 1,
        "kind": "span reader",
        "base": "sentence-transformers/all-MiniLM-L6-v2",
        "seq_max": SEQ_MAX,
        "question_max": QUESTION_MAX,
        "steps": state["step"],
        "training_hours": round(state["seconds"] / 3600, 2),
        "data": json.loads((work / "data.json").read_text()),
    }
    checked = {}
    if check:
        checked = {"float32": evaluate(work, float_path), "int8": evaluate(work, out / "model.onnx")}
        print(json.dumps(checked, indent=1))
        meta["checked"] = checked
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    log = (work / "train.log").read_text(encoding="utf-8") if (work / "train.log").exists() else ""
    (out / "TRAINING.md").write_text(
        "# How this reader was trained\n\n"
        "By `python -m articleqa.models.train_reader` (prepare, train, export), on the data that\n"
        "`src/articleqa/models/data/SOURCES.md` describes (SQuAD v1.1 and v2.0 training splits, CC BY-SA\n"
        "4.0); design and results in docs/reader.md.\n\n"
        f"- data: {meta['data']['questions']} questions, sha256 {meta['data']['sha256']}\n"
        f"- steps: {meta['steps']} of 32 windows; {meta['training_hours']} h on the CPU that ran it\n"
        f"- model.onnx: {(out / 'model.onnx').stat().st_size / 1e6:.1f} MB (int8 weights)\n"
        + (f"- checked on held-back training articles: {json.dumps(checked)}\n" if checked else "")
        + "\n## The training log\n\n```\n"
        + log
        + "```\n",
        encoding="utf-8",
    )


def run_cli(argv: list[str] | None, doc: str, prepare, train, evaluate, export) -> int:
    """The command line every training script here shares: prepare, train, evaluate, export."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p = sub.add_parser("train")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--hours", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--steps", type=int, default=0, help="steps in all (default: as many as --hours allow)")
    p = sub.add_parser("evaluate")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--onnx", type=Path)
    p = sub.add_parser("export")
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-check", action="store_true", help="skip scoring the exported models")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.command == "prepare":
        prepare(args.data, args.work)
    elif args.command == "train":
        train(args.work, args.hours, args.threads, steps=args.steps)
    elif args.command == "evaluate":
        print(json.dumps(evaluate(args.work, args.onnx), indent=1))
    else:
        export(args.work, args.out, check=not args.no_check)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, __doc__, prepare, train, evaluate, export)


if __name__ == "__main__":
    sys.exit(main())
