"""Bytecode in the Lambda packages, so that a cold start does not compile Python.

``chalice package`` zips sources only (``app.py``, ``chalicelib/``, and the layer's wheels as
unpacked), and Lambda's ``/var/task`` and ``/opt`` are read-only: without ``.pyc`` files every
cold start compiles every module it imports, ours and pydantic's alike, and throws the result
away. This adds, beside each ``.py`` in a zip, the ``__pycache__/<name>.cpython-XY.pyc`` the
interpreter looks for, compiled by the interpreter that ran ``chalice package`` (Chalice takes
the Lambda runtime from that same interpreter's version, so the magic number matches).

The files are PEP 552 *unchecked-hash* pycs: the interpreter uses them without comparing the
source's mtime, which a zip (2-second DOS timestamps) and Lambda's extraction do not preserve
exactly. They are only ever written into a package, never into the working tree, where an
unchecked pyc would outlive an edit of its source.

    python -m infra.bytecode build/package/deployment.zip build/package/layer-deployment.zip
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import zipfile
from pathlib import Path, PurePosixPath


def cache_path(source: str) -> str:
    """``chalicelib/money.py`` -> ``chalicelib/__pycache__/money.cpython-311.pyc`` (zip paths)."""
    path = PurePosixPath(source)
    return str(path.parent / "__pycache__" / f"{path.stem}.{sys.implementation.cache_tag}.pyc")


def bytecode(source: bytes, zip_path: str) -> bytes:
    """The unchecked-hash pyc of ``source`` (its code objects name ``zip_path``, as tracebacks will)."""
    from importlib._bootstrap_external import _code_to_hash_pyc  # what py_compile uses for hash pycs

    code = compile(source, zip_path, "exec", dont_inherit=True, optimize=0)
    return bytes(_code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False))


def add_bytecode(package: Path | str) -> int:
    """Add a pyc beside every ``.py`` of the zip ``package`` that has none; returns how many.

    A source that does not compile for this interpreter (a dependency's file for another Python,
    test data) is left as it is: the interpreter would refuse it on import too.
    """
    package = Path(package)
    with zipfile.ZipFile(package) as zin:
        names = set(zin.namelist())
        sources = [i for i in zin.infolist() if i.filename.endswith(".py") and cache_path(i.filename) not in names]
        compiled = {}
        for info in sources:
            try:
                compiled[cache_path(info.filename)] = bytecode(zin.read(info), info.filename)
            except (SyntaxError, ValueError):
                continue
    with zipfile.ZipFile(package, "a", compression=zipfile.ZIP_DEFLATED) as zout:
        for name, data in compiled.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # a fixed date: the same package, byte for byte
            info.external_attr = 0o644 << 16  # Lambda runs the code as a user that must be able to read it
            zout.writestr(info, data, zipfile.ZIP_DEFLATED)
    return len(compiled)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("zips", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for package in args.zips:
        print(f"bytecode: {package}: {add_bytecode(package)} modules compiled ({sys.implementation.cache_tag})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
