"""``SnapshotRateSource``: the rates snapshot shipped inside the package.

``chalicelib/fx/data/rates-snapshot.json`` states its own date (``as_of``) and where its
figures come from (``source``). It is the embedded default (``MIZANI_FX_SOURCE=snapshot``):
the local sandbox, the tests and the demo price with it, so they never need the network.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

from chalicelib.fx.errors import InvalidRates
from chalicelib.fx.rates import Rates, parse_rates

#: The snapshot that ships with the code (Chalice packages everything under ``chalicelib/``).
SNAPSHOT_PATH = Path(__file__).parent / "data" / "rates-snapshot.json"


class SnapshotRateSource:
    """A ``RateSource`` reading a JSON rates file once and answering it ever after.

    The file is validated like any other payload (``parse_rates``); a malformed file is an
    ``InvalidRates`` error on the first ``latest()``, not a silently wrong price.
    """

    def __init__(self, path: Path | str = SNAPSHOT_PATH):
        self.path = Path(path)
        self._rates: Rates | None = None
        self._lock = threading.Lock()

    def latest(self) -> Rates:
        if self._rates is None:
            with self._lock:
                if self._rates is None:
                    try:
                        # A JSON number stays a number here and parse_rates refuses it: rates are strings.
                        payload = json.loads(self.path.read_text(encoding="utf-8"))
                    except (OSError, ValueError) as exc:
                        raise InvalidRates(message=f"cannot read the rates snapshot {self.path.name}: {exc}") from None
                    self._rates = parse_rates(payload)
        return self._rates
