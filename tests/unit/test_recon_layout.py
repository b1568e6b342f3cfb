"""The recon package's layout: what Lambda loads stays light, shared pieces are public, inputs live once.

Polars (requirements-dev.txt only) and the forking runner are for the CLI, the sandbox and
the bench. The deployed package holds every module of ``chalicelib/recon`` but not Polars, so
the modules Lambda loads must not import it (nor ``multiprocessing``) at module load, and what
Lambda runs must never reach it.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECON = ROOT / "chalicelib" / "recon"
RECON_FILES = sorted(RECON.rglob("*.py"))
HEAVY = ("polars", "multiprocessing", "concurrent.futures.process")

#: What the Lambdas import: the API's reconciliation service and the Distributed Map steps.
LAMBDA_MODULES = (
    "chalicelib.recon",
    "chalicelib.recon.service",
    "chalicelib.recon.engine",
    "chalicelib.recon.distributed",
    "chalicelib.recon.importers",
    "chalicelib.recon.importers.airtel",
    "chalicelib.recon.importers.camt053",
    "chalicelib.recon.importers.momo",
    "chalicelib.recon.importers.mpesa",
    "chalicelib.recon.importers.stripe",
    "chalicelib.recon.inputs",
    "chalicelib.recon.reconciliations",
    "chalicelib.recon.archive",
    "chalicelib.recon.stored",
    "chalicelib.recon.ledger_records",
)
INPUTS = ("reconciliation_id", "widen", "statement_period", "statement_inputs", "read_statement")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("AWS_LAMBDA_FUNCTION_NAME", "MIZANI_RECON_ENGINE")}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**environ, **env})


def _loaded(out: subprocess.CompletedProcess) -> dict:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- what Lambda loads --------------------------------------------------------------------------

def test_the_modules_lambda_imports_load_neither_polars_nor_multiprocessing():
    code = (f"import json, sys\nfor m in {LAMBDA_MODULES!r}: __import__(m)\n"
            f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))")
    assert _loaded(_python(code)) == {"heavy": []}


LAMBDA_AT_WORK = """
import json, sys
sys.modules["polars"] = None  # as in the deployed package: ``import polars`` fails
from datetime import date
from chalicelib.recon import columnar, parallel
from chalicelib.recon.archive import MemoryArchive
from chalicelib.recon.distributed import LargeStatements
from chalicelib.recon.ledger_source import MemoryLedgerSource
from chalicelib.recon.model import LedgerLine
from chalicelib.recon.reconciliations import Reconciliations

columnar.MIN_BYTES = parallel.MIN_PARALLEL_BYTES = 0  # size is not why they decline
rows = [f"{900 + i},po_{i},{100 + i},RWF,SUCCESSFUL,2026-05-09T10:00:00Z" for i in range(40)]
content = "financialTransactionId,externalId,amount,currency,status,date\\n" + "\\n".join(rows) + "\\n"
ledger = MemoryLedgerSource([LedgerLine(f"po_{i}", "mtn_momo", -(100 + i), "RWF", date(2026, 5, 9), "payout",
                                        f"po_{i}") for i in range(40)])
small = Reconciliations(MemoryArchive(), ledger).submit("mtn_momo", content)  # the API Lambda
archive = MemoryArchive()
large = Reconciliations(archive, ledger, large=LargeStatements(archive, ledger, min_lines=10, chunk_lines=7))
mapped = large.submit("mtn_momo", content)  # plan, a chunk per Map item, finish
print(json.dumps({"statuses": [small["status"], mapped["status"]],
                  "heavy": [m for m in ("polars", "multiprocessing") if sys.modules.get(m) is not None]}))
"""


def test_what_lambda_runs_never_imports_polars_or_forks_even_when_asked_to():
    out = _python(LAMBDA_AT_WORK, AWS_LAMBDA_FUNCTION_NAME="mizani-dev-api_handler", MIZANI_RECON_WORKERS="2")
    assert _loaded(out) == {"statuses": ["balanced", "balanced"], "heavy": []}


def test_outside_lambda_the_same_reconciliation_does_fork_when_asked_to():
    """The twin of the test above: it shows that test would see a fork."""
    out = _python(LAMBDA_AT_WORK, MIZANI_RECON_WORKERS="2")
    assert _loaded(out) == {"statuses": ["balanced", "balanced"], "heavy": ["multiprocessing"]}


def test_polars_and_multiprocessing_are_imported_only_inside_functions():
    top_level = {}
    for path in RECON_FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
        heavy = sorted(n for n in names if n.split(".")[0] in ("polars", "multiprocessing")
                       or n.startswith("concurrent.futures"))
        if heavy:
            top_level[str(path.relative_to(ROOT))] = heavy
    assert top_level == {}


# -- shared pieces are public -------------------------------------------------------------------

def _module_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def private_imports(path: Path, root: Path = ROOT) -> list[str]:
    """``_names`` that ``path`` takes from another ``chalicelib.recon`` module: imported by name
    (``from chalicelib.recon.engine import _x``) or reached through an imported module
    (``engine._x``, ``getattr(engine, "_x")``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module_of(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found, modules = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([source] if source else []))
            if not source.startswith("chalicelib.recon") or source == here:
                continue
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{source}.{alias.name}")
                elif _is_module(f"{source}.{alias.name}", root):  # ``from chalicelib.recon import engine``
                    modules[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("chalicelib.recon") and alias.asname:
                    modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            if node.attr.startswith("_") and not node.attr.startswith("__"):
                found.append(f"{modules[node.value.id]}.{node.attr}")
        elif (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr" and len(node.args) >= 2
              and isinstance(node.args[0], ast.Name) and node.args[0].id in modules
              and isinstance(node.args[1], ast.Constant) and str(node.args[1].value).startswith("_")):
            found.append(f"{modules[node.args[0].id]}.{node.args[1].value}")
    return found


def test_no_private_name_is_taken_from_another_recon_module():
    offenders = {str(p.relative_to(ROOT)): private_imports(p) for p in RECON_FILES}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_private_name_scanner_sees_every_form(tmp_path):
    sample = tmp_path / "chalicelib" / "recon" / "m.py"
    sample.parent.mkdir(parents=True)
    for name in ("parsing", "model"):
        (sample.parent / f"{name}.py").write_text("")
    sample.write_text(
        "from chalicelib.recon.engine import _a, combine, Line\n"
        "from chalicelib.recon import parsing\n"
        "from . import model\n"
        "def f():\n"
        "    from chalicelib.recon.importers import _b\n"
        "    return parsing._c, getattr(model, '_d'), combine.__name__, Line._fields\n")
    assert sorted(private_imports(sample, root=tmp_path)) == ["chalicelib.recon.engine._a", "chalicelib.recon.importers._b",
                             "chalicelib.recon.model._d", "chalicelib.recon.parsing._c"]


# -- the inputs live in one module ----------------------------------------------------------------

CALLERS = sorted([ROOT / "app.py", *(ROOT / "chalicelib").rglob("*.py"), *(ROOT / "bench").rglob("*.py"),
                  *(ROOT / "sandbox").rglob("*.py"), *(ROOT / "tests").rglob("*.py")])


def _defined(tree: ast.Module) -> set[str]:
    """Names a module defines at its top level (a class's fields are not definitions of these)."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def test_inputs_is_the_only_module_that_defines_the_statement_inputs():
    definers = {name: [] for name in INPUTS}
    for path in CALLERS:
        for name in _defined(ast.parse(path.read_text(encoding="utf-8"))) & set(INPUTS):
            definers[name].append(str(path.relative_to(ROOT)))
    assert definers == {name: ["chalicelib/recon/inputs.py"] for name in INPUTS}


def test_every_caller_takes_the_statement_inputs_from_inputs():
    wrong = {}
    for path in CALLERS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chalicelib.recon"):
                # the package re-exports reconciliation_id and statement_period as its public face
                if node.module not in ("chalicelib.recon.inputs", "chalicelib.recon"):
                    names = [f"{node.module}.{a.name}" for a in node.names if a.name in INPUTS]
                    if names:
                        wrong.setdefault(str(path.relative_to(ROOT)), []).extend(names)
    assert wrong == {}


def test_every_reconciliation_source_has_an_importer_and_every_importer_a_source():
    from chalicelib.recon.importers import IMPORTERS, importer
    from chalicelib.recon.model import SOURCES

    assert set(IMPORTERS) == set(SOURCES)
    assert all(callable(importer(source).parse) for source in SOURCES)
