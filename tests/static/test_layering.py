"""Dependencies point inward: the domain never imports chalice or stripe; `import app` stays light."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ["ledger", "fx", "escrow", "payouts", "notify", "recon", "money.py", "errors.py"]
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


@pytest.mark.parametrize("heavy", ["stripe", "moto", "sandbox"])
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
