"""A visitor's conversations as the web UI keeps them in their browser (gr.BrowserState): plain
JSON, bounded in number and size, checked on the way in since a browser can send anything."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import uuid

from articleqa.settings import data_home

KEPT = 20  # conversations
TURNS = 50  # question-and-answer pairs per conversation
MAX_CHARS = 2_000_000  # of JSON in all: well inside a browser's localStorage (5 MB and up)


def empty() -> dict:
    return {"current": None, "conversations": [], "k": None, "mode": None}


def checked(saved) -> dict:
    """What came back from the browser, as a well-formed store (anything else: an empty one)."""
    if not isinstance(saved, dict) or not isinstance(saved.get("conversations"), list):
        return empty()
    kept = []
    for c in saved["conversations"]:
        if isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("messages"), list):
            kept.append(
                {
                    "id": c["id"],
                    "title": str(c.get("title") or "Conversation")[:120],
                    "when": str(c.get("when") or ""),
                    "messages": [m for m in c["messages"] if isinstance(m, dict)],
                    "asked": [a for a in c.get("asked") or [] if isinstance(a, str)],
                    "turns": [t for t in c.get("turns") or [] if isinstance(t, str)],
                }
            )
    current = saved.get("current") if any(c["id"] == saved.get("current") for c in kept) else None
    return {"current": current, "conversations": kept[:KEPT], "k": saved.get("k"), "mode": saved.get("mode")}


def record(saved, messages: list, asked: list[str], turns: list[str]) -> dict:
    """The store with the current conversation (new if there is none) updated and first in line."""
    saved = checked(saved)
    if not messages:
        return saved
    current = next((c for c in saved["conversations"] if c["id"] == saved["current"]), None)
    if current is None:
        first = next((a for a in asked), "") or "Conversation"
        current = {"id": uuid.uuid4().hex[:12], "title": first[:120], "when": _now()}
    current = {
        **current,
        "messages": messages[-2 * TURNS :],
        "asked": asked[-TURNS:],
        "turns": turns[-TURNS:],
    }
    others = [c for c in saved["conversations"] if c["id"] != current["id"]]
    saved = {**saved, "current": current["id"], "conversations": [current, *others][:KEPT]}
    while len(saved["conversations"]) > 1 and len(json.dumps(saved)) > MAX_CHARS:
        saved["conversations"].pop()  # the oldest go first
    return saved


def opened(saved, conversation_id) -> dict | None:
    return next((c for c in checked(saved)["conversations"] if c["id"] == conversation_id), None)


def forget(saved, conversation_id) -> dict:
    saved = checked(saved)
    rest = [c for c in saved["conversations"] if c["id"] != conversation_id]
    return {**saved, "current": None, "conversations": rest}


def choices(saved) -> list[tuple[str, str]]:
    """(label, id) for a list of past conversations, newest first."""
    return [(f"{c['title']} ({c['when'][:10]})" if c["when"] else c["title"], c["id"]) for c in saved["conversations"]]


def markdown(title: str, turns: list[str]) -> str:
    """A conversation as one Markdown document, with the citations of every answer."""
    return f"# {title}\n\n" + "\n".join(turns)


def browser_secret() -> str:
    """The key conversations kept in visitors' browsers are encrypted with: the same across
    restarts (a new one each start would leave every saved conversation unreadable)."""
    path = data_home() / "ui-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key)
        return key
    except OSError:
        return secrets.token_urlsafe(24)  # unreadable: this run's conversations only


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
