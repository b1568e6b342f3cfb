"""Shared benchmark plumbing: a moto server with fresh tables, a DynamoDB request
counter (botocore's own event hooks), and cold-import timing in fresh interpreters."""
from __future__ import annotations

import collections
import os
import statistics
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


class RequestCounter:
    """Counts API calls a boto3 client makes, by operation name."""

    def __init__(self, client):
        self.calls: collections.Counter[str] = collections.Counter()
        client.meta.events.register("before-call.*.*", self._count)

    def _count(self, model, **_):
        self.calls[model.name] += 1
        if os.environ.get("MIZANI_BENCH_TRACE"):  # each request and the code that made it (to stderr)
            print(f"  {model.name} <- {_caller()}", file=sys.stderr)

    def reset(self) -> None:
        self.calls.clear()

    def total(self) -> int:
        return sum(self.calls.values())

    def describe(self) -> str:
        return ", ".join(f"{n} {op}" for op, n in sorted(self.calls.items())) or "none"


def _caller() -> str:
    """The innermost frames of our own code that led to a request."""
    import traceback

    ours = [f for f in traceback.extract_stack() if "/chalicelib/" in f.filename and "/aws.py" not in f.filename]
    return " < ".join(f"{Path(f.filename).stem}.{f.name}" for f in reversed(ours[-3:]))


@contextmanager
def moto_world(prefix: str | None = None):
    """moto's server on a free port, the tables created from infra/, the env pointing at it."""
    from chalicelib import aws, settings
    from sandbox.aws_local import LOCAL_CREDENTIALS, MotoServer, create_tables
    from sandbox.moto_patches import serialize_dynamodb

    serialize_dynamodb()

    saved = dict(os.environ)
    server = MotoServer(port=0).start()
    prefix = prefix or f"bench-{uuid.uuid4().hex[:8]}"
    os.environ.update(LOCAL_CREDENTIALS)
    os.environ.update({"AWS_ENDPOINT_URL": server.url, "AWS_DEFAULT_REGION": "us-east-1",
                       "MIZANI_TABLE_PREFIX": prefix, "MIZANI_STAGE": "local"})
    settings.get.cache_clear()
    aws.reset()
    create_tables(prefix, server.url)
    try:
        yield server
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
        settings.get.cache_clear()
        aws.reset()


def import_time_ms(module: str, runs: int = 7, cwd: Path | None = None) -> float:
    """Median wall time of ``import module`` in a fresh interpreter (what a Lambda cold start pays),
    run in ``cwd`` (the repository unless told)."""
    code = f"import time; t=time.perf_counter(); import {module}; print((time.perf_counter()-t)*1000)"
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], cwd=cwd or ROOT, capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


@contextmanager
def app_as_packaged() -> Iterator[Path]:
    """A copy of ``app.py`` and ``chalicelib/`` with the bytecode ``make package`` ships beside them
    (``infra.bytecode``: unchecked-hash pycs), for timing a cold start as Lambda pays it."""
    import compileall
    import py_compile
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mizani-packaged-") as tmp:
        root = Path(tmp)
        shutil.copy2(ROOT / "app.py", root / "app.py")
        shutil.copytree(ROOT / "chalicelib", root / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
        mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
        py_compile.compile(str(root / "app.py"), invalidation_mode=mode, doraise=True)
        compileall.compile_dir(str(root / "chalicelib"), quiet=1, invalidation_mode=mode)
        yield root


def row(label: str, value: str) -> None:
    print(f"  {label:<58} {value}")
