"""Co-operatives and their members: the farmers a co-operative's payout is shared among.

A member is a party of its own: a ledger account (``member:<id>``, in the co-operative's
payout currency), a wallet (claimed once in ``chalicelib.wallets``), a status like a
seller's (``active`` / ``pending_review`` / ``blocked``). ``allocation`` is the pure
arithmetic of sharing a payout by quantity delivered; ``service`` registers and lists
members and answers for their balances; ``directory`` is what the USSD menu asks about a
caller, whichever party their number belongs to.
"""
