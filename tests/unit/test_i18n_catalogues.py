"""The message catalogues: every msgid the code marks is translated in every language, with the
same placeholders, and the committed .mo files are what Babel compiles from the .po sources."""
import string

import pytest
from babel.messages.mofile import write_mo  # noqa: F401 - Babel must be importable (requirements-dev.txt)

from chalicelib.i18n import LANGUAGES, gsm7, translator
from infra import i18n


def test_the_catalogues_are_complete_and_the_mo_files_match_their_sources():
    assert i18n.problems() == []


def test_every_language_has_a_catalogue():
    assert set(i18n.languages()) == set(LANGUAGES)


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_the_runtime_reads_exactly_what_the_po_file_says(lang):
    """The stdlib ``gettext`` over the committed .mo returns every .po translation."""
    catalogue = translator(lang)
    messages = [m for m in i18n.read(i18n.po_path(lang), lang) if m.id]
    assert messages
    for m in messages:
        got = catalogue.pgettext(m.context, m.id) if m.context else catalogue.gettext(m.id)
        assert got == m.string, (lang, m.id)


@pytest.mark.parametrize("lang", ["rw", "sw", "fr"])
def test_a_translation_is_not_a_copy_of_the_english(lang):
    messages = [m for m in i18n.read(i18n.po_path(lang), lang) if m.id]
    same = [m.id for m in messages if m.string == m.id]
    assert len(same) <= len(messages) // 10, same  # a few words are the same (mobile money, Mizani: {name})


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_every_translation_survives_gsm7_without_unknown_characters(lang):
    for m in i18n.read(i18n.po_path(lang), lang):
        if m.id:
            assert "?" not in gsm7(m.string), (lang, m.string)


def test_a_mismatched_placeholder_is_reported(tmp_path, monkeypatch):
    """The check can fail: a translation that drops {amount} is caught."""
    catalog = i18n.read(i18n.po_path("sw"), "sw")
    message = next(m for m in catalog if m.id and "{amount}" in m.id)
    message.string = message.string.replace("{amount}", "")
    assert i18n.placeholders(message.string) != i18n.placeholders(message.id)
    assert {name for _, name, _, _ in string.Formatter().parse(message.id) if name} >= {"amount"}
