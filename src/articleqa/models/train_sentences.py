"""Train a sentence reader: a cross-encoder on the bundled all-MiniLM-L6-v2 that reads a question
with one sentence of a passage and scores it as the answer, the sentences of a passage competing
with each other and with "none of them" (a learned bar).

A second design beside the span reader (train_reader.py): the product shows sentences, not
spans, and a sentence with the question fits in 80 word pieces instead of 192, so a step costs a
fraction and the same CPU hours see several times the questions. Same data (SQuAD v1.1 and v2.0
training splits, CC BY-SA 4.0, models/data/SOURCES.md), same held-back training articles; a
paragraph of the same article that does not hold the answer is an example of "none of them".

    python -m articleqa.models.train_sentences prepare --data DIR --work WORK
    python -m articleqa.models.train_sentences train --work WORK [--hours 3] [--threads 2]
    python -m articleqa.models.train_sentences evaluate --work WORK [--onnx FILE]
    python -m articleqa.models.train_sentences export --work WORK --out DIR

Nothing here is imported by the package at run time (it needs torch; answering does not).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

from articleqa.models.train_reader import (
    SEED,
    VALIDATION_ARTICLES,
    _records,
    _tokenizer,
    run_cli,
    to_onnx,
    trained,
    typed,
)

PAIR_MAX = 80  # question and sentence, in word pieces
QUESTION_MAX = 24
NONE_SHARE = 0.25  # questions also asked of a paragraph of their article that does not answer them
MAX_SENTENCES = 12  # of one paragraph, around the answer


def prepare(data: Path, work: Path) -> None:
    """WORK/sentences-{train,validation}.npz: every pair tokenised, grouped by question."""
    from articleqa.text.sentences import sentence_spans

    rng = random.Random(SEED)
    tok = _tokenizer()
    rows = _records(data)
    titles = sorted({r["title"] for r in rows})
    rng.shuffle(titles)
    held = set(titles[:VALIDATION_ARTICLES])  # the span reader's held-back articles too
    paragraphs: dict[str, list[str]] = {}
    for r in rows:
        ps = paragraphs.setdefault(r["title"], [])
        if not ps or ps[-1] != r["context"]:
            ps.append(r["context"])
    split_cache: dict[str, list[tuple[int, int]]] = {}

    def spans(text: str) -> list[tuple[int, int]]:
        if text not in split_cache:
            split_cache[text] = [(a, b) for a, b in sentence_spans(text)]
        return split_cache[text]

    out = {"train": _Groups(), "validation": _Groups()}
    for r in rows:
        split = "validation" if r["title"] in held else "train"
        question = r["question"] if split == "validation" else typed(r["question"], rng)
        q_ids = tok.encode(question, add_special_tokens=False).ids[:QUESTION_MAX]
        context, target = r["context"], -1
        if not r["is_impossible"] and r["answers"]:
            start = r["answers"][0]["start"]
            sents = spans(context)
            target = next((i for i, (a, b) in enumerate(sents) if a <= start < b), -1)
            if target < 0:
                continue
            out[split].add(tok, q_ids, [context[a:b] for a, b in sents], target)
        else:
            out[split].add(tok, q_ids, [context[a:b] for a, b in spans(context)], -1)
        others = [p for p in paragraphs[r["title"]] if p != context]
        if others and rng.random() < NONE_SHARE:
            other = rng.choice(others)
            out[split].add(tok, q_ids, [other[a:b] for a, b in spans(other)], -1)
    for split, groups in out.items():
        groups.save(work / f"sentences-{split}.npz")
    digest = hashlib.sha256()
    for name in ("squad_v1_train.jsonl", "squad_v2_train.jsonl"):
        if (data / name).exists():
            digest.update((data / name).read_bytes())
    (work / "data.json").write_text(json.dumps({"sha256": digest.hexdigest(), "questions": len(rows)}, indent=1))
    print({k: len(v.targets) for k, v in out.items()}, flush=True)


class _Groups:
    """Pairs (question, sentence) as token arrays, grouped by question, with the answer's index."""

    def __init__(self) -> None:
        self.ids: list[np.ndarray] = []
        self.types: list[np.ndarray] = []
        self.sizes: list[int] = []
        self.targets: list[int] = []

    def add(self, tok, q_ids: list[int], sentences: list[str], target: int) -> None:
        if not sentences:
            return
        if len(sentences) > MAX_SENTENCES:  # a window around the answer (or the paragraph's start)
            first = max(0, min(target - MAX_SENTENCES // 2, len(sentences) - MAX_SENTENCES)) if target >= 0 else 0
            sentences = sentences[first : first + MAX_SENTENCES]
            target = target - first if target >= 0 else -1
        room = PAIR_MAX - len(q_ids) - 3
        for s in sentences:
            s_ids = tok.encode(s, add_special_tokens=False).ids[:room]
            ids = [101, *q_ids, 102, *s_ids, 102]  # [CLS] question [SEP] sentence [SEP]
            self.ids.append(np.array(ids, np.int32))
            self.types.append(np.array([0] * (len(q_ids) + 2) + [1] * (len(s_ids) + 1), np.int8))
        self.sizes.append(len(sentences))
        self.targets.append(target)

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            ids=np.concatenate(self.ids),
            types=np.concatenate(self.types),
            lengths=np.array([len(x) for x in self.ids], np.int32),
            sizes=np.array(self.sizes, np.int32),
            targets=np.array(self.targets, np.int32),
        )


class Groups:
    def __init__(self, path: Path) -> None:
        z = np.load(path)
        self.ids, self.types, self.lengths = z["ids"], z["types"], z["lengths"]
        self.sizes, self.targets = z["sizes"], z["targets"]
        self.token_at = np.concatenate([[0], np.cumsum(self.lengths)])
        self.pair_at = np.concatenate([[0], np.cumsum(self.sizes)])

    def __len__(self) -> int:
        return len(self.sizes)

    def batch(self, groups):
        """The pairs of these question groups, padded; and each group's slice and target."""
        import torch

        pairs = [p for g in groups for p in range(self.pair_at[g], self.pair_at[g + 1])]
        width = int(max(self.lengths[p] for p in pairs))
        ids = np.zeros((len(pairs), width), np.int64)
        types = np.zeros((len(pairs), width), np.int64)
        mask = np.zeros((len(pairs), width), np.int64)
        for i, p in enumerate(pairs):
            a, b = self.token_at[p], self.token_at[p + 1]
            ids[i, : b - a], types[i, : b - a], mask[i, : b - a] = self.ids[a:b], self.types[a:b], 1
        return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types)


def plan(groups: Groups, pairs_per_step: int, seed: int) -> list[list[int]]:
    """Steps of whole question groups, about `pairs_per_step` pairs each, in a shuffled order."""
    order = np.random.default_rng(seed).permutation(len(groups))
    out, step, n = [], [], 0
    for g in order.tolist():
        step.append(g)
        n += int(groups.sizes[g])
        if n >= pairs_per_step:
            out.append(step)
            step, n = [], 0
    if step:
        out.append(step)
    return out


def build_model():
    import torch
    from transformers import BertModel

    from articleqa.embed.model import bundled_model_path

    class SentenceReader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel.from_pretrained(str(bundled_model_path()), add_pooling_layer=False)
            self.score = torch.nn.Linear(self.bert.config.hidden_size, 1)
            self.none = torch.nn.Parameter(torch.zeros(1))  # the bar a sentence must pass

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
            return self.score(hidden[:, 0]).squeeze(-1) - self.none  # above 0: better than none

    return SentenceReader()


def _loss(scores, groups: list[int], data: Groups):
    """Cross-entropy per question over [none, its sentences]: a sentence's score is its margin
    over "none" (which scores 0)."""
    import torch

    losses, at = [], 0
    for g in groups:
        n = int(data.sizes[g])
        logits = torch.cat([scores.new_zeros(1), scores[at : at + n]])
        target = int(data.targets[g]) + 1  # 0: none
        losses.append(torch.nn.functional.cross_entropy(logits[None], torch.tensor([target])))
        at += n
    return torch.stack(losses).mean()


def train(work: Path, hours: float, threads: int, pairs_per_step: int = 48, lr: float = 5e-5, steps: int = 0) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    data = Groups(work / "sentences-train.npz")
    model = build_model()
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    checkpoint = work / "checkpoint.pt"
    state = {"step": 0, "epoch": 0, "position": 0, "total": steps or None, "seconds": 0.0}
    if checkpoint.exists():
        saved = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
        print(f"resumed at step {state['step']}", flush=True)
    log = (work / "train.log").open("a")
    steps_plan = plan(data, pairs_per_step, SEED + state["epoch"])
    warmup, started, base = 200, time.monotonic(), state["seconds"]
    last_save = time.monotonic()
    window_loss, window_n, window_q, window_t = 0.0, 0, 0, time.monotonic()
    model.train()
    while True:
        if state["position"] >= len(steps_plan):
            state["epoch"] += 1
            state["position"] = 0
            steps_plan = plan(data, pairs_per_step, SEED + state["epoch"])
        if steps and state["total"] != steps:
            note = f"schedule: {state['total']} -> {steps} steps at step {state['step']}"
            print(note, flush=True)
            log.write(note + "\n")
            state["total"] = steps
        if state["total"] is None and state["step"] == 20:
            per_step = (time.monotonic() - started) / 20
            state["total"] = int(hours * 3600 / per_step)
            print(f"{per_step:.2f} s a step: {state['total']} steps in {hours} h", flush=True)
        groups = steps_plan[state["position"]]
        total, step = state["total"] or 10**9, state["step"]
        scale = (step + 1) / warmup if step < warmup else max(0.0, 1 - (step - warmup) / max(1, total - warmup))
        for group in optimizer.param_groups:
            group["lr"] = lr * scale
        ids, mask, types = data.batch(groups)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            scores = model(ids, mask, types)
        loss = _loss(scores.float(), groups, data)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        state["step"] += 1
        state["position"] += 1
        window_loss += float(loss.detach())
        window_n += 1
        window_q += len(groups)
        done = state["total"] is not None and state["step"] >= state["total"]
        if window_n == 50 or done:
            now = time.monotonic()
            line = (
                f"step {state['step']}/{state['total']} epoch {state['epoch']} loss {window_loss / window_n:.4f} "
                f"lr {lr * scale:.2e} {window_q / (now - window_t):.1f} questions/s "
                f"{(base + now - started) / 3600:.2f} h"
            )
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()
            window_loss, window_n, window_q, window_t = 0.0, 0, 0, now
        if time.monotonic() - last_save > 600 or done:
            state["seconds"] = base + time.monotonic() - started
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state}, tmp)
            os.replace(tmp, checkpoint)
            last_save = time.monotonic()
        if done:
            break
    log.close()


def evaluate(work: Path, onnx: Path | None = None, limit: int = 2000) -> dict:
    """On the held-back articles: how often the best sentence is the answer's (when it passes
    the bar), and how often none passes where the paragraph does not answer."""
    data = Groups(work / "sentences-validation.npz")
    run = _onnx_runner(onnx) if onnx else _torch_runner(work)
    right = have = none_right = nones = 0
    groups = list(range(min(limit, len(data))))
    for i in range(0, len(groups), 16):
        chunk = groups[i : i + 16]
        ids, mask, types = data.batch(chunk)
        scores = run(ids.numpy(), mask.numpy(), types.numpy())
        at = 0
        for g in chunk:
            n = int(data.sizes[g])
            mine = scores[at : at + n]
            at += n
            target = int(data.targets[g])
            if target >= 0:
                have += 1
                right += int(np.argmax(mine)) == target and mine.max() > 0
            else:
                nones += 1
                none_right += mine.max() <= 0
    return {
        "sentence_right": right / max(have, 1),
        "answerable": have,
        "none_right": none_right / max(nones, 1),
        "none": nones,
    }


def _torch_runner(work: Path):
    import torch

    model, _ = trained(build_model, work)

    def run(ids, mask, types):
        with torch.no_grad():
            return model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types)).numpy()

    return run


def _onnx_runner(path: Path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run(ids, mask, types):
        return session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]

    return run


def export(work: Path, out: Path, check: bool = True) -> None:
    """OUT/model.onnx (int8 weights), the tokenizer, meta.json and TRAINING.md."""

    model, state = trained(build_model, work)
    out.mkdir(parents=True, exist_ok=True)
    float_path = work / "sentences-float32.onnx"
    to_onnx(model, float_path, out, {"margin": {0: "batch"}})
    meta = {
        "format": 1,
        "kind": "sentence reader",
        "base": "sentence-transformers/all-MiniLM-L6-v2",
        "pair_max": PAIR_MAX,
        "question_max": QUESTION_MAX,
        "steps": state["step"],
        "training_hours": round(state["seconds"] / 3600, 2),
        "data": json.loads((work / "data.json").read_text()),
    }
    if check:
        meta["checked"] = {"float32": evaluate(work, float_path), "int8": evaluate(work, out / "model.onnx")}
        print(json.dumps(meta["checked"], indent=1))
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    log = (work / "train.log").read_text(encoding="utf-8") if (work / "train.log").exists() else ""
    (out / "TRAINING.md").write_text(
        "# How this sentence reader was trained\n\n"
        "By `python -m articleqa.models.train_sentences` (prepare, train, export), on the data that\n"
        "`src/articleqa/models/data/SOURCES.md` describes (SQuAD v1.1 and v2.0 training splits, CC BY-SA\n"
        "4.0); design and results in docs/reader.md.\n\n"
        f"- steps: {meta['steps']} of about 48 pairs; {meta['training_hours']} h on the CPU that ran it\n"
        f"- model.onnx: {(out / 'model.onnx').stat().st_size / 1e6:.1f} MB (int8 weights)\n"
        + (f"- checked on held-back training articles: {json.dumps(meta['checked'])}\n" if check else "")
        + "\n## The training log\n\n```\n"
        + log
        + "```\n",
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, __doc__, prepare, train, evaluate, export)


if __name__ == "__main__":
    sys.exit(main())
