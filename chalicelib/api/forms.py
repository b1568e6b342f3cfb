"""Form-encoded request bodies (``application/x-www-form-urlencoded``), as gateways send them.

``parse_form(raw)`` is the body as ``{name: value}``, or a 400 ``validation_error`` saying
why not: not UTF-8, not a form, too many fields, or a field given twice (a gateway sends
each once; two values would leave us guessing which one counts). Validate the result with
a pydantic model (``routing.validate``), as JSON bodies are.

``SmsDeliveryForm`` is Africa's Talking's SMS delivery report (see
``chalicelib.notify.sms_gateway``). Fields AT may add later are ignored, not refused:
the form is AT's, not ours.
"""
from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from chalicelib.errors import ValidationError

FORM = "application/x-www-form-urlencoded"
#: More fields than any gateway form we take has.
MAX_FIELDS = 50
MAX_BYTES = 16 * 1024


def _invalid(message: str, path: str = "body") -> ValidationError:
    return ValidationError("validation_error", message, fields=[{"path": path, "message": message}])


def parse_form(raw: bytes | str | None) -> dict[str, str]:
    """The form's fields (see the module doc); an empty body is an empty form."""
    raw = raw or b""
    if len(raw) > MAX_BYTES:
        raise _invalid(f"the form is longer than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict")
    except UnicodeDecodeError:
        raise _invalid("the body is not UTF-8 text") from None
    except ValueError as exc:
        raise _invalid(f"the body is not a form: {exc}") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise _invalid(f"the field {name!r} appears twice", name)
        fields[name] = value
    return fields


Token = Annotated[StrictStr, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class SmsDeliveryForm(BaseModel):
    """Africa's Talking's delivery report: ``id`` (the messageId AT gave at send time), ``status``,
    ``phoneNumber`` (E.164, ``+`` optional), ``networkCode``, ``failureReason``, ``retryCount``."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: Token
    status: Annotated[StrictStr, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z]+$")]
    phone_number: Annotated[StrictStr, Field(alias="phoneNumber", pattern=r"^\+?[1-9][0-9]{7,14}$")]
    network_code: Annotated[StrictStr, Field(alias="networkCode", max_length=10, pattern=r"^[0-9]*$")] = ""
    failure_reason: Annotated[StrictStr, Field(alias="failureReason", max_length=60,
                                               pattern=r"^[A-Za-z0-9_ ]*$")] = ""
    retry_count: Annotated[int | None, Field(alias="retryCount", ge=0, le=1000)] = None

    @field_validator("retry_count", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        return None if value == "" else value
