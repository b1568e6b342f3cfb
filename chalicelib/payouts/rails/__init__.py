"""Payout rails: the ``PayoutRail`` port and its adapters.

* ``port.py``   ``PayoutRail`` (``send`` / ``status``), ``RailStatus``, the rule
                "a timeout / 5xx / queue timeout is ``unknown``, never ``failed``"
* ``fake.py``   ``FakeRail``, the in-memory twin with scriptable outcomes
* ``momo.py``   ``MtnMomoRail`` (MTN MoMo Disbursement ``transfer``), callback parser
* ``mpesa.py``  ``MpesaB2CRail`` (Daraja B2C v3), result / queue-timeout parsers, result store port
* ``http.py``   the one urllib3 client (timeouts, bounded retries for safe requests only)
* ``config.py`` ``build_rail(rail_name, settings)``: the registry entry's ``from_settings`` (``chalicelib.rails``)

Adapters import urllib3 (and boto3, for secrets by ARN) lazily, so importing this
package is cheap.
"""
from chalicelib.payouts.rails.config import build_rail  # noqa: F401
from chalicelib.rails import RAIL_NAMES  # noqa: F401
from chalicelib.payouts.rails.fake import FakeRail  # noqa: F401
from chalicelib.payouts.rails.port import (  # noqa: F401
    FINAL_STATES,
    NOT_FOUND,
    PayeeCheck,
    PayoutRail,
    RailConfigError,
    RailNotSent,
    RailState,
    RailStatus,
)
