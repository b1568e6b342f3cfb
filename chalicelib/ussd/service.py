"""The USSD service behind ``POST /v1/ussd``: Africa's Talking's callback in, one screen out.

Africa's Talking posts, form-encoded, ``sessionId``, ``serviceCode``, ``phoneNumber``,
``networkCode`` and ``text`` (every input of the session so far joined by ``*``; empty on the
first request) and shows the answer: ``CON <screen>`` or ``END <screen>``. Errors are screens
too: a malformed callback, an unknown number, a locked number, a bug; the gateway never sees
anything else, and a request that cannot be read changes nothing.

Sessions: the number's latest session is one record (``store.SessionRecord``): the session id,
the menu state, how many inputs it has taken, the last screen, and who calls in which language
(looked up when the session opens). A request of that session hands the menu only the inputs it
has not seen; a repeated request (same session, no new input)
gets the stored screen again and runs nothing twice. A new session id while the last one stopped
mid-menu less than ``RESUME_SECONDS`` ago offers "1. Continue 2. Start again".
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from urllib.parse import parse_qsl

from chalicelib.i18n import DEFAULT_LANGUAGE, LanguagePreferences
from chalicelib.ussd.directory import Caller, Directory
from chalicelib.ussd.menu import ENDED, Context, Menu, resume_point
from chalicelib.ussd.pins import PinHasher
from chalicelib.ussd.screens import Screen, Texts
from chalicelib.ussd.store import SessionRecord, UssdStore

logger = logging.getLogger("mizani.ussd")

#: How long after its last screen a session may be resumed from a new dial (and is kept).
RESUME_SECONDS = 5 * 60

MAX_BODY_BYTES = 4096
MAX_TEXT_CHARS = 1000
MAX_INPUTS = 64
_SESSION_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_PHONE = re.compile(r"\+?([1-9][0-9]{7,14})")
_CODE = re.compile(r"[0-9A-Za-z*#+_.\-]{0,64}")
_TEXT = re.compile(r"[^\x00-\x1f\x7f]*")  # no control characters (a keypad sends digits, * and #)


class MalformedCallback(ValueError):
    """The callback is not a readable Africa's Talking USSD request (the answer is an END screen)."""


@dataclass(frozen=True)
class UssdRequest:
    """One readable callback."""

    session_id: str
    msisdn: str  # E.164 digits, no "+"
    text: str
    service_code: str = ""
    network_code: str = ""

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.text.split("*")) if self.text else ()


def parse_callback(body: bytes | str | Mapping[str, str]) -> UssdRequest:
    """The request in a form-encoded body (or an already parsed form); ``MalformedCallback`` if it
    is not one: not UTF-8, a field missing, twice, or not the shape Africa's Talking sends."""
    if isinstance(body, Mapping):
        form = {str(k): str(v) for k, v in body.items()}
    else:
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
        if len(raw) > MAX_BODY_BYTES:
            raise MalformedCallback("the body is too large")
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=16)
        except (UnicodeDecodeError, ValueError):
            raise MalformedCallback("the body is not a form") from None
        form = {}
        for name, value in pairs:
            if name in form:
                raise MalformedCallback(f"{name} appears twice")
            form[name] = value
    for name in ("sessionId", "phoneNumber", "text"):
        if name not in form:
            raise MalformedCallback(f"{name} is missing")
    phone = _PHONE.fullmatch(form["phoneNumber"].strip())
    text = form["text"]
    if not _SESSION_ID.fullmatch(form["sessionId"]) or phone is None:
        raise MalformedCallback("sessionId or phoneNumber is not valid")
    if len(text) > MAX_TEXT_CHARS or not _TEXT.fullmatch(text) or text.count("*") >= MAX_INPUTS:
        raise MalformedCallback("text is not valid")
    codes = (form.get("serviceCode", ""), form.get("networkCode", ""))
    if not all(_CODE.fullmatch(code) for code in codes):
        raise MalformedCallback("serviceCode or networkCode is not valid")
    return UssdRequest(form["sessionId"], phone.group(1), text, *codes)


def mask_text(text: object) -> str:
    """``text`` safe to log: every input with four digits or more (it may be a PIN) is masked.
    Amounts are masked too; better a log that says less than one that shows a PIN."""
    inputs = str(text or "").split("*")
    return "*".join("[masked]" if sum(ch.isdigit() for ch in part) >= 4 else part for part in inputs)


def masked_form(body: bytes | str) -> str:
    """A raw callback body for a log line, its ``text`` masked (and nothing else of it kept)."""
    try:
        return mask_text(parse_callback(body).text)
    except MalformedCallback:
        return "[unreadable]"


class UssdService:
    """Answers USSD callbacks (see the module docstring). ``directory`` may be given as a zero-argument
    factory (``directory_factory``) resolved on the first request: the composition root can wire
    this service before the members package's directory is built."""

    def __init__(self, store: UssdStore, languages: LanguagePreferences, hasher: PinHasher, *,
                 directory: Directory | None = None, directory_factory: Callable[[], Directory] | None = None,
                 clock: Callable[[], float] = time.time, resume_seconds: int = RESUME_SECONDS):
        if (directory is None) == (directory_factory is None):
            raise ValueError("give exactly one of directory, directory_factory")
        self.store = store
        self.languages = languages
        self.hasher = hasher
        self.clock = clock
        self.resume_seconds = resume_seconds
        self._directory = directory
        self._directory_factory = directory_factory
        self._menu: Menu | None = None

    @property
    def menu(self) -> Menu:
        if self._menu is None:
            directory = self._directory if self._directory is not None else self._directory_factory()
            self._menu = Menu(directory, self.store, self.hasher, self.languages)
        return self._menu

    # -- the edge -----------------------------------------------------------------------------
    def answer_callback(self, body: bytes | str | Mapping[str, str]) -> str:
        """``CON ...`` / ``END ...`` for a raw callback body, whatever it holds."""
        started = time.perf_counter()
        try:
            request = parse_callback(body)
        except MalformedCallback as why:
            logger.info("ussd malformed callback: %s", why)
            return str(Texts(DEFAULT_LANGUAGE).malformed())
        if not request.text:  # the gateway's first request of a session: the code was just dialled
            from chalicelib.observability import metrics

            metrics.ussd_session()
        try:
            screen = self.answer(request)
        except Exception:  # noqa: BLE001 - the gateway gets a screen, the log gets the traceback
            logger.exception("ussd error session=%s text=%s", request.session_id, mask_text(request.text))
            screen = Texts(self._language_or_default(request.msisdn)).unavailable()
        logger.info("ussd", extra={"ussd": request.session_id, "msisdn_tail": request.msisdn[-4:],
                                   "text": mask_text(request.text), "end": screen.end, "code": screen.code or None,
                                   "ms": round((time.perf_counter() - started) * 1000, 1)})
        return str(screen)

    def _language_or_default(self, msisdn: str) -> str:
        try:
            return self.languages.get(msisdn)
        except Exception:  # noqa: BLE001 - already answering an error
            return DEFAULT_LANGUAGE

    # -- one request ----------------------------------------------------------------------------
    def answer(self, request: UssdRequest) -> Screen:
        now = int(self.clock())
        msisdn = request.msisdn
        menu = self.menu
        inputs = request.inputs
        record = self.store.get_session(msisdn)
        live = record is not None and record.expires_at > now
        remembered = _caller(record.caller) if live and record.session_id == request.session_id else None
        same_session = remembered is not None
        if same_session and (len(inputs) <= record.consumed or record.state == ENDED):
            return Screen.parse(record.screen)  # the gateway asked again: the same answer, nothing run twice
        if same_session:
            # Who calls and in which language were settled when the session opened (a lock set since
            # is met at the next PIN question, which reads the PIN record itself).
            caller, lang, pin = remembered, record.lang, None
        else:
            caller = menu.directory.caller(msisdn)
            lang = self.languages.get(msisdn)
            if caller is None:
                return Texts(lang).not_registered()
            pin = self.store.get_pin(msisdn)
            if pin is not None and pin.locked(now):
                return Texts(lang).locked(pin.locked_until, now)  # the lock holds across sessions
        ctx = Context(caller, Texts(lang), request.session_id, inputs, now)
        if same_session:
            state, start, screen = record.state, record.consumed, None
        else:
            state, start = menu.first_state(pin is not None), 0
            saved = _resumable(record.state) if live else None
            if saved is not None and pin is not None and not inputs:
                state = {"at": "resume", "saved": saved}
            screen = None if inputs else menu.prompt(state, ctx)
        for index in range(start, len(inputs)):
            state, screen = menu.on_input(state, inputs[index], ctx.at(index))
            if screen.end:
                state = ENDED
                break
        stored = SessionRecord(request.session_id, state, len(inputs), str(screen), now + self.resume_seconds,
                               version=record.version if record is not None else 0, caller=asdict(caller), lang=lang)
        if not self.store.put_session(msisdn, stored):
            # Another request of this number wrote first (a repeated request racing this one): its
            # answer stands; every effect here was keyed by session and position, so none ran twice.
            latest = self.store.get_session(msisdn)
            if latest is not None and latest.session_id == request.session_id and latest.consumed >= len(inputs):
                return Screen.parse(latest.screen)
        return screen


def _caller(fields: dict | None) -> Caller | None:
    """The caller a session remembered (None: none, or one an older release stored in another shape)."""
    try:
        return Caller(**fields) if fields else None
    except TypeError:
        return None


def _resumable(state: dict) -> dict | None:
    """Where a new session may continue the last one (an offer not yet answered is offered again)."""
    if state.get("at") == "resume":
        return resume_point(state.get("saved"))
    return resume_point(state)


def build_service(settings, docs, directory_factory: Callable[[], Directory]) -> UssdService:
    """The deployed wiring: sessions and PINs in the app table, the pepper from ``MIZANI_PIN_PEPPER``
    (an SSM / Secrets Manager reference outside the local stage, where it has no default)."""
    from chalicelib.secrets import secret_value
    from chalicelib.ussd.dynamo_store import DynamoUssdStore
    from chalicelib.ussd.pins import LOCAL_PIN_PEPPER

    pepper = secret_value("MIZANI_PIN_PEPPER", settings, LOCAL_PIN_PEPPER)
    return UssdService(DynamoUssdStore(settings.table("app")), LanguagePreferences(docs), PinHasher(pepper),
                       directory_factory=directory_factory)


def answer_callback(build: Callable[[], UssdService], body: bytes | str) -> str:
    """The route's whole job: build (or reuse) the service and answer; if even building fails
    (a missing secret outside the local stage), an END screen, never an HTTP error."""
    try:
        service = build()
    except Exception:  # noqa: BLE001 - the gateway gets a screen, the log gets the traceback
        logger.exception("ussd service could not be built (text=%s)", masked_form(body))
        return str(Texts(DEFAULT_LANGUAGE).unavailable())
    return service.answer_callback(body)
