"""Dependencies point inward: the domain never imports chalice or stripe; `import app` stays light."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ["ledger", "fx", "escrow", "payouts", "notify", "recon", "disputes", "screening", "money.py", "errors.py"]
FORBIDDEN_IN_DOMAIN = {"chalice", "stripe"}


def _domain_files():
    files = []
    for part in DOMAIN:
        path = ROOT / "chalicelib" / part
        if path.is_dir():
            files += sorted(path.rglob("*.py"))
        elif path.exists():
            files.append(path)
    return files


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots = set()
    for node in ast.walk(tree):  # lazy imports inside functions count too
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                roots.add(node.args[0].value.split(".")[0])
    return roots


FILES = _domain_files()


def test_the_domain_packages_exist():
    assert any(f.parent.name == "ledger" for f in FILES)


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(ROOT)) for f in FILES])
def test_domain_modules_import_neither_chalice_nor_stripe(path):
    assert not (_imported_roots(path) & FORBIDDEN_IN_DOMAIN)


def test_nothing_deployed_imports_the_sandbox_or_moto():
    deployed = [ROOT / "app.py"] + sorted((ROOT / "chalicelib").rglob("*.py"))
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imported_roots(p) & {"sandbox", "moto", "infra", "tests"})
        for p in deployed
        if p.exists()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_scanner_sees_lazy_imports(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    import stripe.x\n    from chalice import app\n")
    assert {"stripe", "chalice"} <= _imported_roots(sample)


@pytest.fixture(scope="module")
def modules_after_import_app():
    if not (ROOT / "app.py").exists():
        pytest.skip("app.py does not exist yet")
    code = "import json, sys; import app; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("heavy", ["stripe", "moto", "sandbox", "phonenumbers", "rapidfuzz", "polars"])
def test_import_app_does_not_import(modules_after_import_app, heavy):
    assert heavy not in modules_after_import_app


def test_only_the_columnar_engine_imports_polars_and_only_lazily():
    """Polars is a development dependency (too big for the Lambda layer): deployed code must run without it."""
    users = [str(p.relative_to(ROOT)) for p in [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
             if "polars" in _imported_roots(p)]
    assert users == ["chalicelib/recon/columnar.py"]
    tree = ast.parse((ROOT / "chalicelib/recon/columnar.py").read_text(encoding="utf-8"))
    top_level = {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    assert "polars" not in top_level
    requirements = (ROOT / "requirements.txt").read_text()
    assert "polars" not in requirements


# -- who may import whom inside chalicelib (issue 10) -----------------------------------------------

CHALICELIB = ROOT / "chalicelib"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _chalicelib_imports(path: Path) -> set[str]:
    """The chalicelib modules ``path`` imports, lazily or not (``from chalicelib.x import y`` counts
    as ``chalicelib.x.y`` when that is a module, else ``chalicelib.x``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    typing_only = {id(n) for block in ast.walk(tree)
                   if isinstance(block, ast.If) and getattr(block.test, "id", getattr(block.test, "attr", "")) == "TYPE_CHECKING"
                   for n in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue  # annotations only: never imported at run time
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] == "chalicelib" and name in MODULES:
                found.add(name)
    return found


MODULES = {_module_name(p): p for p in CHALICELIB.rglob("*.py")}


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _offenders(importer_package: str, forbidden: set[str]) -> dict[str, list[str]]:
    bad = {}
    for name, path in MODULES.items():
        if _package_of(name) != importer_package:
            continue
        hits = sorted(m for m in _chalicelib_imports(path) if _package_of(m) in forbidden)
        if hits:
            bad[name] = hits
    return bad


@pytest.mark.parametrize("package", ["ledger", "fx", "escrow", "payouts", "notify", "recon", "disputes", "screening"])
def test_domain_packages_never_import_the_edge(package):
    """``workflow/tasks.py`` is the Lambda tasks' glue and may reach the composition root; the domain may not."""
    assert _offenders(package, {"api", "webhooks", "bootstrap"}) == {}


def test_notify_never_imports_payouts():
    assert _offenders("notify", {"payouts"}) == {}


def test_payouts_never_imports_escrow():
    assert _offenders("payouts", {"escrow"}) == {}


def test_there_are_no_import_cycles_inside_chalicelib():
    graph = {name: _chalicelib_imports(path) - {name} for name, path in MODULES.items()}
    # A package's __init__ re-exporting its own modules is not a cycle between modules.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []
