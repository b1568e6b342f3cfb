"""The catalogues ship as compiled .mo files read by the standard library: nothing deployed needs Babel."""
import ast
import gettext
from pathlib import Path

from chalicelib.i18n import LANGUAGES
from chalicelib.i18n.catalogue import DOMAIN, LOCALE_DIR

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_nothing_deployed_imports_babel():
    deployed = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    assert [str(p.relative_to(ROOT)) for p in deployed if "babel" in _imports(p)] == []
    assert "babel" not in (ROOT / "requirements.txt").read_text().lower()


def test_every_language_has_a_compiled_catalogue_inside_the_deployed_package():
    for lang in LANGUAGES:
        mo = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
        assert mo.is_file() and ROOT / "chalicelib" in mo.parents  # chalice packages chalicelib/ whole
        assert gettext.find(DOMAIN, LOCALE_DIR, languages=[lang]) == str(mo)
