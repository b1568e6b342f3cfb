"""Mobile-money collection: a buyer paying an order from a wallet of a rail (the rails' other half).

* ``port.py``     ``CollectionRail``: ``request`` / ``status`` / ``refund`` / ``refund_status``, the rule
                  "a timeout is unknown, never failed" (``RailStatus`` of the payouts port)
* ``momo.py``     MTN MoMo Collection ``requesttopay`` (+ the Disbursement ``refund`` that gives it back)
* ``mpesa.py``    M-Pesa Lipa na M-Pesa Online: STK push, its callback, the STK query, the reversal
* ``store.py``    the per-collection record (``collection#<reference>``), the open ones indexed for the poller
* ``service.py``  ``Collections``: request, advance (poll-first; a callback is a hint), refund

Adapters import urllib3 lazily (``chalicelib.http``); importing this package is cheap.
"""
