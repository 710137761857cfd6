"""The package's layers, read from the source (`import` statements anywhere in a module, lazy ones
inside functions included): no module imports a higher layer or a sibling component of its own
layer, and no modules import each other in a cycle.

Lowest first; a component is a package or module, and a module belongs to the component with the
longest matching name. An app imports trainer.model (transcriber, ONNX runtime) and gets nothing of
training, evaluation or the pipeline with it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = "trainer"
LAYERS: tuple[dict[str, tuple[str, ...]], ...] = (
    # trainer.model.frontend is pure arithmetic that data import and the model factory both read.
    {
        "basics": (
            ROOT,
            "trainer.config",
            "trainer.exit_codes",
            "trainer.layout",
            "trainer.lease",
            "trainer.model.frontend",
            "trainer.runtime_env",
            "trainer.storage",
            "trainer.torchrun",
        )
    },
    {"data": ("trainer.data",)},
    {"model": ("trainer.model",)},
    {"evaluation": ("trainer.evaluation",)},
    {"training": ("trainer.training",), "assessment": ("trainer.assessment",)},
    {"compare": ("trainer.compare",)},
    # `python -m trainer`: parses arguments and calls into the layers below.
    {
        "cli": (
            "trainer.__main__",
            "trainer.cli",
            "trainer.assessment.cli",
            "trainer.data.cli",
            "trainer.evaluation.cli",
            "trainer.training.cli",
        )
    },
    # Renders and runs the CLI's commands as jobs (it checks them with the CLI's own parser).
    {"pipeline": ("trainer.pipeline",)},
)
REPO = Path(__file__).resolve().parent.parent


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a name imported from a package counts as the
    submodule when there is one, else as the package)."""
    root = package_dir.name
    modules = {}
    for path in package_dir.rglob("*.py"):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[: len(here) - node.level + 1] + [node.module or ""]).strip(".")
                base = base if node.level else node.module
                targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        edges = set()
        for target in targets:
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules and target != name and target.split(".")[0] == root:
                edges.add(target)
        graph[name] = edges
    return graph


def component(module: str, layers=LAYERS) -> tuple[int, str]:
    """(layer index, component name) of a module; KeyError for a module no component holds."""
    best: tuple[int, int, str] | None = None
    for level, components in enumerate(layers):
        for comp, names in components.items():
            for prefix in names:
                holds = module == prefix or (module.startswith(prefix + ".") and "." in prefix)
                if holds and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), level, comp)
    if best is None:
        raise KeyError(f"{module}: in no layer; add it to LAYERS")
    return best[1], best[2]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while (w := stack.pop()) != v:
                scc.append(w)
            if scc:
                found.append(sorted([v, *scc]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_problems(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    """One line per import that goes up a layer or across to a sibling, per module in no layer,
    and per import cycle."""
    problems = []
    for module in sorted(graph):
        try:
            level, comp = component(module, layers)
        except KeyError as exc:
            problems.append(exc.args[0])
            continue
        for target in sorted(graph[module]):
            to_level, to_comp = component(target, layers)
            if to_level > level:
                problems.append(f"{module} ({comp}) imports {target} ({to_comp}), a higher layer")
            elif to_level == level and to_comp != comp:
                problems.append(f"{module} ({comp}) imports {target} ({to_comp}), a sibling in its layer")
    problems += [f"import cycle: {' <-> '.join(scc)}" for scc in cycles(graph)]
    return problems


def test_the_package_keeps_its_layers():
    assert layer_problems(import_graph(REPO / ROOT)) == []


def test_the_check_finds_an_upward_import_a_sibling_import_and_a_cycle(tmp_path):
    files = {
        "pkg/__init__.py": "",
        "pkg/low/__init__.py": "",
        "pkg/low/a.py": "def f():\n    from pkg.high import b\n",
        "pkg/low/c.py": "from . import a\n",
        "pkg/high/__init__.py": "",
        "pkg/high/b.py": "from pkg.low.a import f\n",
        "pkg/high/d.py": "import pkg.side\n",
        "pkg/side.py": "",
        "pkg/stray.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    layers = ({"base": ("pkg",)}, {"low": ("pkg.low",)}, {"high": ("pkg.high",), "side": ("pkg.side",)})
    assert layer_problems(import_graph(tmp_path / "pkg"), layers) == [
        "pkg.high.d (high) imports pkg.side (side), a sibling in its layer",
        "pkg.low.a (low) imports pkg.high.b (high), a higher layer",
        "pkg.stray: in no layer; add it to LAYERS",
        "import cycle: pkg.high.b <-> pkg.low.a",
    ]
