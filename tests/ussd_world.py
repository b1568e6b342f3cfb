"""A phone that dials the USSD service as Africa's Talking would, and a world of fakes behind it.

``Gateway(answer)`` posts callbacks through ``answer(form_body) -> "CON ..." | "END ..."`` (the
service's ``answer_callback``, or an HTTP client's): every ``dial`` opens a new session id, and
each input is sent with the session's whole ``text`` so far joined by ``*``.

``UssdWorld`` is the service on in-memory adapters (``MemoryUssdStore``, ``FakeDirectory``,
``MemoryDocuments``), a cheap scrypt cost and a clock the test moves.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from urllib.parse import urlencode

from chalicelib.documents import MemoryDocuments
from chalicelib.i18n import LanguagePreferences
from chalicelib.ussd.fake import FakeDirectory
from chalicelib.ussd.pins import PinHasher
from chalicelib.ussd.service import UssdService
from chalicelib.ussd.store import MemoryUssdStore

SERVICE_CODE = "*384*2026#"
_sessions = itertools.count(1)


def form(session_id: str, phone: str, text: str, **more) -> str:
    """The callback body Africa's Talking posts."""
    fields = {"sessionId": session_id, "serviceCode": SERVICE_CODE, "phoneNumber": phone, "networkCode": "63510",
              "text": text, **more}
    return urlencode(fields)


@dataclass
class Dial:
    """One session: its id and every screen it got (the first for the empty text)."""

    session_id: str
    screens: list[str] = field(default_factory=list)

    @property
    def last(self) -> str:
        return self.screens[-1]


class Gateway:
    """Dials a number, as Africa's Talking: a new session per dial, ``text`` accumulating."""

    def __init__(self, answer, phone: str = "+250788123456"):
        self.answer = answer
        self.phone = phone

    def send(self, session_id: str, inputs: list[str] | tuple[str, ...]) -> str:
        return self.answer(form(session_id, self.phone, "*".join(inputs)))

    def dial(self, *inputs: str, session_id: str | None = None) -> Dial:
        """Dial, then type ``inputs`` one by one; stops at an END screen."""
        dial = Dial(session_id or f"ATUid_{next(_sessions):06d}")
        dial.screens.append(self.send(dial.session_id, []))
        for n in range(1, len(inputs) + 1):
            if dial.last.startswith("END "):
                raise AssertionError(f"the session ended before input {n}: {dial.last!r}")
            dial.screens.append(self.send(dial.session_id, inputs[:n]))
        return dial


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class UssdWorld:
    """The USSD service on in-memory adapters (see the module docstring)."""

    def __init__(self, pepper: str = "test-pepper"):
        self.directory = FakeDirectory()
        self.store = MemoryUssdStore()
        self.docs = MemoryDocuments()
        self.languages = LanguagePreferences(self.docs)
        self.clock = Clock()
        self.service = UssdService(self.store, self.languages, PinHasher(pepper, n=2**4), directory=self.directory,
                                   clock=self.clock)

    def phone(self, msisdn: str = "250788123456") -> Gateway:
        return Gateway(self.service.answer_callback, f"+{msisdn}")
