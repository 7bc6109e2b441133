"""The package's layout rules: imports run down the pipeline, without circles, and each stage's
public surface resolves to what its modules define."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "rag"
# a module may import only modules of its own rank or below (rag/index/milvus sits just below rag/index's users)
RANK = {"types": 0, "errors": 0, "checks": 0, "lazy": 0, "models": 0, "sources": 1, "chunking": 2, "encoding": 3,
        "index": 4, "answer": 5, "locations": 6, "evaluation": 7, "api": 7, "web": 8, "bench": 8, "commands": 9,
        "cli": 10, "__main__": 11}
PACKAGES = ["rag.sources", "rag.chunking", "rag.encoding", "rag.index", "rag.index.milvus", "rag.answer",
            "rag.evaluation", "rag.bench", "rag.web"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> float:
    parts = module.split(".")
    if len(parts) == 1:
        return 12  # rag/__init__.py: the Python API's lazy entry point
    return RANK[parts[1]] + (0.5 if module.startswith("rag.index.milvus") else 0)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{m} uses a relative import; imports are absolute (rag....)")
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rag"):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            graph[m] |= {n for n in names if n in modules and n != m and not m.startswith(n + ".")}
    return graph


def test_every_module_has_a_stage_and_imports_only_down_the_pipeline():
    graph = import_graph()
    upward = sorted((a, b) for a, targets in graph.items() for b in targets if rank(b) > rank(a))
    assert upward == []


def test_there_are_no_import_circles():
    graph = import_graph()
    seen: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(m: str, path: list[str]) -> None:
        seen[m] = 1
        for n in sorted(graph[m]):
            if seen.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in seen:
                visit(n, path + [n])
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m, [m])


def test_other_stages_import_a_stage_only_through_its_package():
    graph = import_graph()
    packages = set(PACKAGES)
    bypass = []
    for a, targets in graph.items():
        for b in targets:
            home = b.rsplit(".", 1)[0]
            if home in packages and b not in packages and not (a == home or a.startswith(home + ".")):
                bypass.append((a, b))
    assert bypass == []


@pytest.mark.parametrize("package", PACKAGES)
def test_each_public_name_is_the_object_its_module_defines(package: str):
    pkg = importlib.import_module(package)
    assert pkg.__doc__ and len(pkg.__doc__.strip().splitlines()) == 2  # what the stage takes and gives
    for name in getattr(pkg, "__all__", []):
        module = importlib.import_module(pkg._EXPORTS[name])
        assert getattr(pkg, name) is getattr(module, name)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        pkg.nothing_here  # noqa: B018


def test_the_command_line_and_the_packages_import_light():
    """`rag --help` imports no numeric or model library; a package's __init__ imports none of its modules."""
    code = ("import sys, rag.cli, rag.index, rag.answer, rag.encoding, rag.web; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'faiss', 'torch', 'onnxruntime', 'gradio')"
            " or m in ('rag.index.reading', 'rag.answer.searcher', 'rag.encoding.onnx', 'rag.web.page')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


def test_no_module_is_much_over_350_lines():
    sizes = {module_name(p): len(p.read_text("utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    assert max(sizes.values()) <= 360, max(sizes.items(), key=lambda kv: kv[1])
