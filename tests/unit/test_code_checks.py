"""The engine's type hints are checked by mypy, and the code is ruff-clean (both run here, in the suite)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_engine_type_checks() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "sync_agent"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_ruff_is_clean() -> None:
    ruff = Path(sys.executable).parent / "ruff"
    r = subprocess.run([str(ruff), "check", "sync_agent", "desktop_app", "tests", "bench"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:]


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted((ROOT / "sync_agent").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def _imports(tree: ast.Module, module: str, *, top_level_only: bool) -> set[str]:
    """Modules ``tree`` imports; with ``top_level_only``, what runs at import time (no TYPE_CHECKING blocks,
    no imports inside functions)."""
    found: set[str] = set()
    body = tree.body if top_level_only else list(ast.walk(tree))
    for node in body:
        if top_level_only and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:  # relative: resolve against the package
                pkg = module.rsplit(".", node.level)[0]
                base = f"{pkg}.{node.module}"
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def test_only_node_client_talks_to_minio_py() -> None:
    """One module owns the S3 library: everything else asks a NodeClient (#15). (``minio_link`` holds the
    parts of it loaded on first use, for the client's start-up.)"""
    for name, tree in _modules().items():
        if name in ("sync_agent.node_client", "sync_agent.minio_link"):
            continue
        assert not any(m == "minio" or m.startswith("minio.") for m in _imports(tree, name, top_level_only=False)), name
        for node in ast.walk(tree):
            attr = node.func if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else node
            if isinstance(attr, ast.Attribute) and (attr.attr in ("s3", "_call", "_creds")
                                                     or (attr is not node and attr.attr == "admin")):
                owner = attr.value
                assert isinstance(owner, ast.Name) and owner.id == "self", (name, attr.lineno, ast.unparse(attr))


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> list[str] | None:
        state[n] = 1
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return [*path[path.index(m):], n, m] if m in path else [*path, n, m]
            if m not in state and (found := visit(m, [*path, n])):
                return found
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n, [])):
            return found
    return None


def test_the_engine_never_imports_the_window_and_has_no_import_circle() -> None:
    """Every import counts, also those only for type hints and those inside functions: the read, write and
    catalog paths take a ``PoolView`` and ``Pool`` composes them, so nothing points back up (#15)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, tree in modules.items():
        every = _imports(tree, name, top_level_only=False)
        assert not any(m.split(".")[0] in ("desktop_app", "PySide6") for m in every), name
        graph[name] = {m for m in every if m in modules and m != name}
    circle = _circle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def _window_modules() -> dict[str, ast.Module]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts): ast.parse(p.read_text(), str(p))
            for p in sorted((ROOT / "desktop_app").rglob("*.py"))}


def test_the_window_and_the_command_line_use_only_the_public_api() -> None:
    """``desktop_app`` and ``sync_agent.cli`` import the engine only through ``sync_agent.api``; the engine
    imports neither the command line nor its own front door (#15)."""
    fronts = {**_window_modules(), **{n: t for n, t in _modules().items() if n.startswith("sync_agent.cli")}}
    wrong = []
    for name, tree in fronts.items():
        for m in _imports(tree, name, top_level_only=False):
            if m.startswith("sync_agent") and not (m in ("sync_agent", "sync_agent.api")
                                                    or m.startswith(("sync_agent.api.", "sync_agent.cli"))):
                wrong.append(f"{name} imports {m}")
    assert not wrong, "\n".join(wrong)
    for name, tree in _modules().items():
        if name.startswith("sync_agent.cli") or name == "sync_agent.api":
            continue
        reached = _imports(tree, name, top_level_only=False)
        assert not any(m.startswith(("sync_agent.cli", "sync_agent.api")) for m in reached), name


def test_the_public_api_lists_what_it_loads_and_loads_it_only_when_used() -> None:
    from sync_agent import api

    tree = ast.parse((ROOT / "sync_agent/api.py").read_text())
    typed = {a.asname or a.name for node in tree.body if isinstance(node, ast.If)
             for imp in node.body if isinstance(imp, ast.ImportFrom) for a in imp.names}
    assert typed == set(api._SOURCES) == set(api.__all__)
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    r = subprocess.run([sys.executable, "-c", "import sys; from sync_agent import api; api.app_version(); "
                        "print(sorted(m for m in ('sync_agent.pool', 'minio', 'peewee') if m in sys.modules))"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


def test_a_command_that_reads_only_the_catalog_never_loads_the_s3_library(tmp_path: Path) -> None:
    """Node clients are made on first use (#15: `pooldrive ls` start-up): opening a pool, recovering its
    intents and listing its catalog load neither minio-py nor obstore."""
    code = ("import sys; from pathlib import Path; from sync_agent.config import NodeConfig, PoolConfig; "
            "from sync_agent.pool import Pool; "
            "p = Pool(PoolConfig(name='t', bucket='b', nodes=(NodeConfig('n1', '127.0.0.1:9'),)), "
            f"catalog_path=Path({str(tmp_path / 'c.sqlite3')!r})); "
            "p.recover(); p.list(''); p.close(); "
            "print(sorted(m for m in ('minio', 'obstore', 'sync_agent.node_client') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]", r.stdout + r.stderr


# Pure decision modules (no I/O: nothing happens there worth a log line), the command-line front end (it
# speaks to the user on screen), package markers, and the API's front door and type-only views.
QUIET = {"placement", "replica_plan", "durability", "keys", "errors", "metadata", "sync/decide", "sync/planner",
         "sync/conflicts", "sync/ignore", "catalog/models", "netshape/profiles", "sharing/policy",
         "about", "api", "pool_view", "node_types", "listing_xml"}


def test_every_module_that_does_work_has_its_own_logger() -> None:
    """So a person reading the agent's log sees which part said what, and a swallowed error can be logged."""
    missing = []
    for path in sorted((ROOT / "sync_agent").rglob("*.py")):
        rel = path.relative_to(ROOT / "sync_agent").with_suffix("").as_posix()
        if path.name == "__init__.py" or rel.startswith("cli/") or rel in QUIET:
            continue
        if "log = logging.getLogger(__name__)" not in path.read_text():
            missing.append(rel)
    assert not missing, f"modules without a logger: {missing}"


def test_each_command_loads_the_group_that_registers_it() -> None:
    """The command line loads only the named command's group (``COMMANDS``): the table must name every
    command each group registers, and nothing else."""
    import argparse
    import importlib

    from sync_agent.cli.main import COMMAND_MODULES, COMMANDS

    registered = {}
    for name in COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"sync_agent.cli.{name}").register(sub)
        registered.update(dict.fromkeys(sub.choices, name))
    assert registered == COMMANDS
