"""The packages depend one way: contracts <- messaging, ledger <- producer, consumer, query;
client on contracts alone; only the composition root (jobcast/) wires them together.

Read from each module's import statements (inside functions and TYPE_CHECKING blocks too), so
an import the wrong way fails here, not as a cycle or a client that pulls in the broker.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

OURS = frozenset(
    {
        "contracts",
        "messaging",
        "ledger",
        "producer",
        "consumer",
        "query",
        "client",
        "observability",
        "jobcast",
    }
)
BROKER_AND_IO = frozenset(
    {"faststream", "aio_pika", "aiormq", "asyncpg", "aiosqlite", "httpx", "fastapi", "uvicorn"}
)


def imports_of(package: str) -> dict[str, set[str]]:
    """Each module of `package` (by path) and the top-level names it imports."""
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, f"no package {package!r} under {ROOT}"
    found: dict[str, set[str]] = {}
    for path in modules:
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names.add(package if node.level else (node.module or "").split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def offending(package: str, forbidden: frozenset[str] | set[str]) -> dict[str, set[str]]:
    """The modules of `package` that import any of `forbidden`, with what they import."""
    return {
        module: names & forbidden
        for module, names in imports_of(package).items()
        if names & forbidden
    }


def test_contracts_import_no_other_jobcast_package_and_no_broker_or_io_library():
    assert offending("contracts", (OURS - {"contracts"}) | BROKER_AND_IO) == {}


@pytest.mark.parametrize("package", ["messaging", "ledger", "client"])
def test_the_packages_under_the_edges_build_on_contracts_alone(package):
    assert offending(package, OURS - {"contracts", package}) == {}


def test_producer_and_consumer_never_import_each_other():
    assert offending("producer", {"consumer"}) == {}
    assert offending("consumer", {"producer"}) == {}


def test_the_query_side_imports_neither_producer_nor_consumer():
    assert offending("query", {"producer", "consumer"}) == {}


@pytest.mark.parametrize(
    "package", ["contracts", "messaging", "ledger", "producer", "consumer", "query", "client"]
)
def test_only_the_composition_root_imports_jobcast(package):
    assert offending(package, {"jobcast", "observability"}) == {}


def test_observability_is_wired_by_the_root_and_never_imports_it():
    assert offending("observability", {"jobcast"}) == {}
