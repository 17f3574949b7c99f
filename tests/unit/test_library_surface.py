"""jobcast reaches FastStream and aio-pika through their public API only (README, Dependencies
and why): every name imported from faststream is one its module exports, no module of either
library is private, and no code reads another object's private attribute. Fails on an upgrade
that stops exporting what jobcast relies on, and when a private access comes back."""

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PACKAGES = (
    "contracts",
    "messaging",
    "ledger",
    "producer",
    "consumer",
    "query",
    "client",
    "observability",
    "jobcast",
    "harness",
    "bench",
    "tests",
)
LIBRARIES = ("faststream", "aio_pika", "aiormq")

PUBLIC_BY_CONVENTION = frozenset({"_replace"})
"""Underscore names that are public API: namedtuple's `_replace`."""


def _trees(packages: tuple[str, ...] = PACKAGES) -> Iterator[tuple[Path, ast.Module]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT), ast.parse(path.read_text(), filename=str(path))


def _library_imports() -> Iterator[tuple[Path, str, list[str]]]:
    """(file, module, names) of every import from FastStream, aio-pika or aiormq."""
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] in LIBRARIES:
                    yield path, node.module, [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in LIBRARIES:
                        yield path, alias.name, []


FASTSTREAM_IMPORTS = sorted(
    {(module, name) for _, module, names in _library_imports() for name in names}
)


def test_no_private_module_of_faststream_aio_pika_or_aiormq_is_imported():
    private = [
        f"{path}: {module}"
        for path, module, _ in _library_imports()
        if any(part.startswith("_") for part in module.split("."))
    ]
    assert not private


@pytest.mark.parametrize(
    ("module", "name"),
    [(m, n) for m, n in FASTSTREAM_IMPORTS if m.startswith("faststream")],
    ids="{0[0]}.{0[1]}".format,
)
def test_every_name_imported_from_faststream_is_exported_by_its_module(module, name):
    assert name in importlib.import_module(module).__all__


def _super_calls_of_the_overridden_method(tree: ast.Module) -> set[ast.AST]:
    """`super()._hook(...)` inside an override of `_hook`: a subclass completing the hook its
    library asks subclasses to implement (messaging/faststream.ClusterBroker._connect), not a
    read of another object's private attribute."""
    found: set[ast.AST] = set()
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr == function.name
                    and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Name)
                    and node.value.func.id == "super"
                ):
                    found.add(node)
    return found


def test_no_code_reads_a_private_attribute_of_another_object():
    found = []
    for path, tree in _trees(PACKAGES[:-1]):
        own_classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        overrides = _super_calls_of_the_overridden_method(tree)
        for node in ast.walk(tree):
            if node in overrides:
                continue
            if isinstance(node, ast.Attribute):
                name, owner = node.attr, node.value
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr")
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
            ):
                name, owner = node.args[1].value, node.args[0]
            else:
                continue
            if not name.startswith("_") or name.startswith("__") or name in PUBLIC_BY_CONVENTION:
                continue
            if isinstance(owner, ast.Name) and owner.id in {"self", "cls", *own_classes}:
                continue
            found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    assert not found
