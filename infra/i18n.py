"""The message catalogues' build: extract the msgids from the code, keep the ``.po`` files in step, compile ``.mo``.

    python -m infra.i18n extract   # chalicelib/**.py -> locale/mizani.pot; new msgids added to every
                                   # locale/<lang>/LC_MESSAGES/mizani.po (untranslated), gone ones dropped
    python -m infra.i18n compile   # every mizani.po -> its mizani.mo (committed: the runtime has no Babel)
    python -m infra.i18n --check   # exit 1 if the template, a catalogue or a .mo is stale or untranslated

Babel (requirements-dev.txt) is a development tool only; at run time ``chalicelib.i18n`` reads the
``.mo`` files with the standard library's ``gettext``. Keywords: ``_`` and ``N_`` (a msgid), ``_p`` and
``pgettext`` (a context, then a msgid). Texts are ``str.format`` templates: a translation uses exactly
its msgid's placeholders.
"""
from __future__ import annotations

import argparse
import io
import string
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = ROOT / "chalicelib"
LOCALE_DIR = SOURCE_DIR / "i18n" / "locale"
DOMAIN = "mizani"
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
KEYWORDS = {"_": None, "N_": None, "pgettext": ((1, "c"), 2), "_p": ((1, "c"), 2)}
#: Fixed header dates: the files change when their messages do, not when the tool runs.
HEADER_DATE = datetime(2026, 12, 1, tzinfo=timezone.utc)


def languages() -> list[str]:
    return sorted(p.name for p in LOCALE_DIR.iterdir() if (p / "LC_MESSAGES" / f"{DOMAIN}.po").exists())


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(lang: str) -> Path:
    return po_path(lang).with_suffix(".mo")


def extracted():
    """The template catalogue of every msgid the code marks."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    catalog = Catalog(project="Mizani", version="1", domain=DOMAIN, creation_date=HEADER_DATE,
                      revision_date=HEADER_DATE, fuzzy=False, charset="utf-8",
                      header_comment="# Mizani's messages (USSD screens and SMS), extracted from chalicelib/.\n"
                                     "# python -m infra.i18n extract\n#")
    for filename, lineno, message, comments, context in extract_from_dir(
        str(SOURCE_DIR), method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        catalog.add(message, None, [(f"chalicelib/{filename}", lineno)], auto_comments=comments, context=context)
    return catalog


def read(path: Path, lang: str | None = None):
    from babel.messages.pofile import read_po

    with open(path, "rb") as fh:
        return read_po(fh, locale=lang, domain=DOMAIN)


def po_bytes(catalog) -> bytes:
    from babel.messages.pofile import write_po

    out = io.BytesIO()
    write_po(out, catalog, width=100, no_location=True, sort_output=True, ignore_obsolete=True)
    return out.getvalue()


def mo_bytes(catalog) -> bytes:
    from babel.messages.mofile import write_mo

    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def keys(catalog) -> set[tuple[str, str | None]]:
    return {(m.id, m.context) for m in catalog if m.id}


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def extract() -> None:
    template = extracted()
    TEMPLATE.write_bytes(po_bytes(template))
    for lang in languages():
        catalog = read(po_path(lang), lang)
        catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
        catalog.obsolete.clear()
        po_path(lang).write_bytes(po_bytes(catalog))


def compile_all() -> None:
    for lang in languages():
        mo_path(lang).write_bytes(mo_bytes(read(po_path(lang), lang)))


def problems() -> list[str]:
    """What is stale or wrong, one line each (empty: all good)."""
    found = []
    template = extracted()
    wanted = keys(template)
    if not TEMPLATE.exists() or keys(read(TEMPLATE)) != wanted:
        found.append(f"{TEMPLATE.relative_to(ROOT)} is not the code's msgids: run python -m infra.i18n extract")
    for lang in languages():
        catalog = read(po_path(lang), lang)
        if keys(catalog) != wanted:
            found.append(f"{lang}: msgids differ from the code's (missing {sorted(wanted - keys(catalog))[:3]}, "
                         f"extra {sorted(keys(catalog) - wanted)[:3]})")
        for message in catalog:
            if not message.id:
                continue
            if not message.string:
                found.append(f"{lang}: untranslated {message.id!r}")
            elif placeholders(message.string) != placeholders(message.id):
                found.append(f"{lang}: {message.id!r} has placeholders {sorted(placeholders(message.string))}")
            if message.fuzzy:
                found.append(f"{lang}: fuzzy {message.id!r}")
        if not mo_path(lang).exists() or mo_path(lang).read_bytes() != mo_bytes(catalog):
            found.append(f"{mo_path(lang).relative_to(ROOT)} is stale: run python -m infra.i18n compile")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.i18n")
    parser.add_argument("command", nargs="?", choices=("extract", "compile"), help="what to rebuild")
    parser.add_argument("--check", action="store_true", help="only report what is stale (exit 1)")
    args = parser.parse_args(argv)
    if args.command == "extract":
        extract()
    elif args.command == "compile":
        compile_all()
    issues = problems() if args.check or args.command is None else []
    for issue in issues:
        print(issue, file=sys.stderr)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
