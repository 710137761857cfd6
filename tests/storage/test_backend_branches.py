"""No module outside trainer.storage branches on the backend: every read and publish goes through
its one interface, and where a decision depends on the backend (what a pod mounts, where local
scratch lives) a storage.py helper makes it. The check reads each module's syntax tree."""

from __future__ import annotations

import ast
from pathlib import Path

TRAINER = Path(__file__).resolve().parents[2] / "trainer"

# Names that only storage.py may use: asking them is asking which backend a location is on.
BACKEND_NAMES = {"is_s3", "split_s3", "S3Store", "LocalStore", "S3Record", "LocalRecord"}


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _is_s3_text(node: ast.AST) -> bool:
    """The literal "s3://..." (or a tuple holding one), as a scheme test spells it."""
    if isinstance(node, ast.Tuple):
        return any(_is_s3_text(item) for item in node.elts)
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lstrip("^").startswith("s3:")


def _called(node: ast.AST, name: str) -> bool:
    func = node.func if isinstance(node, ast.Call) else None
    return (isinstance(func, ast.Name) and func.id == name) or (isinstance(func, ast.Attribute) and func.attr == name)


def backend_branches(source: str) -> list[tuple[int, str]]:
    """(line, what) of every place in `source` that asks which backend a location is on: a storage
    name only storage.py may use, a test of the text "s3://" (startswith, ==, in, a regex), or
    `local_path(...)` (directly or through the name it was assigned to) compared with None."""
    tree = ast.parse(source)
    from_local_path = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.NamedExpr)) and _called(node.value, "local_path")
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Name, ast.Attribute, ast.alias)):
            name = {ast.Name: "id", ast.Attribute: "attr", ast.alias: "name"}[type(node)]
            if getattr(node, name) in BACKEND_NAMES:
                found.append((node.lineno, getattr(node, name)))
        elif isinstance(node, ast.Call) and (
            (isinstance(node.func, ast.Attribute) and node.func.attr in ("startswith", "endswith"))
            or _called(node, "match")
            or _called(node, "fullmatch")
            or _called(node, "search")
        ):
            if any(_is_s3_text(arg) for arg in node.args):
                found.append((node.lineno, "a test of the text s3://"))
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_s3_text(o) for o in operands):
                found.append((node.lineno, "a test of the text s3://"))
            elif any(_is_none(o) for o in operands) and any(
                _called(o, "local_path") or (isinstance(o, ast.Name) and o.id in from_local_path) for o in operands
            ):
                found.append((node.lineno, "local_path(...) compared with None"))
    return sorted(found)


def test_the_backend_check_finds_each_way_of_asking():
    asked = [
        "if uri.startswith('s3://'): pass",
        "if uri[:5] == 's3://': pass",
        "if 's3://' in uri: pass",
        "if re.match(r'^s3://', uri): pass",
        "if storage.local_path(uri) is None: pass",
        "local = local_path(uri)\nif local is not None: pass",
        "from trainer.storage import is_s3",
        "store = storage.S3Store('b', 'p')",
    ]
    assert [len(backend_branches(code)) for code in asked] == [1] * len(asked)
    assert not backend_branches("path = storage.join(uri, 'x')\nif uri.startswith('/'): pass")


def test_no_module_outside_storage_branches_on_the_backend():
    """One interface for every read and publish: callers never ask which backend they have; where a
    decision depends on it (what a pod mounts, where local scratch lives), a storage.py helper makes it."""
    offenders = [
        f"{path.relative_to(TRAINER.parent)}:{line}: {what}"
        for path in sorted(TRAINER.rglob("*.py"))
        if path.name != "storage.py"
        for line, what in backend_branches(path.read_text(encoding="utf-8"))
    ]
    assert not offenders
