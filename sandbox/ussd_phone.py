"""A basic phone in the terminal: ``make ussd PHONE=+250788123456`` (``python -m sandbox.ussd_phone``).

It dials the USSD service of the running sandbox (``make run``: ``POST /v1/ussd`` on
``MIZANI_API_BASE_URL``, default ``http://127.0.0.1:8000``) exactly as Africa's Talking would: a new
``sessionId`` per dial, the session's inputs joined by ``*`` in ``text``, and it shows each
``CON``/``END`` screen as the phone would. A PIN question is read without echo.

    python -m sandbox.ussd_phone +250788123456 [--code '*384*2026#'] [--url http://127.0.0.1:8000]
"""
from __future__ import annotations

import argparse
import getpass
import sys
import textwrap
import uuid
from urllib.error import URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

DEFAULT_CODE = "*384*2026#"  # chalicelib.notify.messages.LOCAL_USSD_CODE: what the sandbox's SMS tell members to dial
WIDTH = 26  # a basic phone's screen is narrow


def post(url: str, session_id: str, phone: str, code: str, inputs: list[str], network: str = "63510") -> str:
    """One callback, as the gateway sends it; the answer's text (``CON ...`` / ``END ...``)."""
    body = urlencode({"sessionId": session_id, "serviceCode": code, "phoneNumber": phone, "networkCode": network,
                      "text": "*".join(inputs)}).encode("ascii")
    request = Request(f"{url.rstrip('/')}/v1/ussd", data=body, method="POST",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urlopen(request, timeout=30) as reply:  # noqa: S310 - the local sandbox
        return reply.read().decode("utf-8")


def show(answer: str, out=sys.stdout) -> None:
    """The screen in a phone-shaped box."""
    kind, text = answer[:3], answer[4:]
    lines = [part for line in text.split("\n") for part in (textwrap.wrap(line, WIDTH) or [""])]
    print("+" + "-" * (WIDTH + 2) + "+", file=out)
    for line in lines:
        print(f"| {line:<{WIDTH}} |", file=out)
    footer = "[reply]" if kind == "CON" else "[session ended]"
    print("+" + footer.center(WIDTH + 2, "-") + "+", file=out)


def asks_for_pin(answer: str) -> bool:
    last = answer[4:].split("\n")[-1].strip()
    return "PIN" in last and last.endswith(":")


def session(url: str, phone: str, code: str, read=input, read_secret=getpass.getpass) -> bool:
    """One dial until its END screen; False when the user quits (EOF / Ctrl-C)."""
    session_id = f"ATUid_{uuid.uuid4().hex[:16]}"
    inputs: list[str] = []
    while True:
        answer = post(url, session_id, phone, code, inputs)
        show(answer)
        if not answer.startswith("CON "):
            return True
        try:
            value = read_secret("> ") if asks_for_pin(answer) else read("> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return False
        inputs.append(value.strip())


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(prog="python -m sandbox.ussd_phone", description=__doc__.split("\n")[0])
    parser.add_argument("phone", help="the caller's number, E.164 (+250788123456)")
    parser.add_argument("--code", default=DEFAULT_CODE, help="the USSD service code dialled")
    parser.add_argument("--url", default=os.environ.get("MIZANI_API_BASE_URL", f"http://127.0.0.1:{os.environ.get('MIZANI_PORT', '8000')}"),
                        help="the Mizani API (make run)")
    args = parser.parse_args(argv)
    phone = args.phone if args.phone.startswith("+") else f"+{args.phone}"
    print(f"Dialling {args.code} from {phone} ({args.url}). Ctrl-D to hang up.")
    while True:
        try:
            if not session(args.url, phone, args.code):
                return 0
        except URLError as error:
            print(f"ussd: cannot reach {args.url} ({error.reason}); is `make run` running?", file=sys.stderr)
            return 1
        try:
            again = input("Enter to dial again, q to quit: ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if again.strip().lower().startswith("q"):
            return 0


if __name__ == "__main__":
    sys.exit(main())
