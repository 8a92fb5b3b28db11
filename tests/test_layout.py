"""The package reads as its data flow: imports point one way (down docs/how-it-works.md's picture),
never in a circle; benchmarks' tools stay out of it; no module or function outgrows one concept."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "src" / "articleqa"
# Lower layers first; a module may import its own layer and the ones before it.
LAYERS = [
    ("__about__", "errors", "schema", "settings", "runtime"),
    ("text",),
    ("ingest", "embed"),
    ("index",),
    ("query",),
    ("library",),
    ("evaluate", "ui", "cli", "__init__", "__main__", "models"),
]
PEERS_AND_TEST_TOOLS = ("langchain", "langchain_community", "txtai", "playwright", "gradio_client", "benchmarks")


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(p for p in parts if p != "__init__")] = path
    return out


def imports(path: Path) -> set[str]:
    """Every module an import statement names (at the top or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def layer(module: str) -> int:
    first = module.split(".")[1] if module.count(".") else "__init__"
    return next(i for i, names in enumerate(LAYERS) if first in names)


def test_imports_point_down_the_data_flow():
    known = modules()
    upward = [
        f"{m} -> {t}"
        for m, path in known.items()
        for t in imports(path)
        if t in known and t != "articleqa" and layer(t) > layer(m)
    ]
    assert upward == []


def test_there_are_no_import_circles():
    known = modules()
    graph = {m: {t for t in imports(p) if t in known and t not in (m, "articleqa")} for m, p in known.items()}
    state: dict[str, int] = {}
    circles = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                circles.append(" -> ".join([*path[path.index(t) :], t]))
            elif t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert circles == []


def test_the_doors_never_touch_the_model_or_faiss():
    """The command line and the web UI go through the library (as sqlite-utils' CLI does)."""
    inner = ("articleqa.embed", "articleqa.index", "faiss", "onnxruntime", "sentence_transformers", "torch")
    doors = {m: p for m, p in modules().items() if m == "articleqa.cli" or m.startswith("articleqa.ui")}
    assert [f"{m}: {t}" for m, p in doors.items() for t in imports(p) if t.startswith(inner)] == []


def test_the_installed_package_imports_no_peer_or_test_tool():
    offenders = [
        f"{m}: {t}" for m, path in modules().items() for t in imports(path) if t.split(".")[0] in PEERS_AND_TEST_TOOLS
    ]
    assert offenders == []


def test_no_module_over_600_lines_and_no_function_over_100():
    long_modules, long_functions = [], []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 600:
            long_modules.append(str(path.relative_to(ROOT)))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 100:
                long_functions.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert (long_modules, long_functions) == ([], [])
