"""USSD for basic phones, on Africa's Talking's callback protocol (``POST /v1/ussd``).

``service`` reads the callback and keeps the session (resume after a timeout, repeated requests
answered once); ``menu`` is the state machine; ``screens`` every text, in four languages, within
182 characters of GSM 03.38; ``pins`` hashes PINs (scrypt + a server-side pepper); ``store`` /
``dynamo_store`` keep PINs, their lockout and sessions; ``directory`` is the one port to the rest of
Mizani (callers, balances, withdrawals), ``fake`` its in-memory twin.
"""
