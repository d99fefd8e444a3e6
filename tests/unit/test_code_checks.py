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
    """One module owns the S3 library: everything else asks a NodeClient (#15)."""
    for name, tree in _modules().items():
        if name == "sync_agent.node_client":
            continue
        assert not any(m == "minio" or m.startswith("minio.") for m in _imports(tree, name, top_level_only=False)), name
        for node in ast.walk(tree):
            attr = node.func if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else node
            if isinstance(attr, ast.Attribute) and (attr.attr in ("s3", "_call", "_creds")
                                                     or (attr is not node and attr.attr == "admin")):
                owner = attr.value
                assert isinstance(owner, ast.Name) and owner.id == "self", (name, attr.lineno, ast.unparse(attr))


def test_the_engine_never_imports_the_window_and_has_no_import_circle() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, tree in modules.items():
        every = _imports(tree, name, top_level_only=False)
        assert not any(m.split(".")[0] in ("desktop_app", "PySide6") for m in every), name
        graph[name] = {m for m in _imports(tree, name, top_level_only=True) if m in modules and m != name}
    # a circle among what modules import at load time makes import order matter: there is none
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path[path.index(m):], n, m]))
            if m not in state:
                visit(m, [*path, n])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [])


# Pure decision modules (no I/O: nothing happens there worth a log line), the command-line front end (it
# speaks to the user on screen) and package markers.
QUIET = {"placement", "replica_plan", "keys", "errors", "metadata", "sync/decide", "sync/planner",
         "sync/conflicts", "sync/ignore", "catalog/models", "netshape/profiles", "sharing/policy"}


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
