"""Card disputes (chargebacks) and the chargeback reserve.

Stripe tells us about a dispute with ``charge.dispute.*`` webhooks carrying its Dispute object
(``events.py`` parses them, pure). ``DisputeService`` (service.py) keeps one document per dispute
(``dispute#<id>``) holding what Stripe has told us so far, merged so that facts only ever go
forward (a late or repeated event changes nothing), and then converges: it moves the money in
the ledger under ids derived from the dispute id, asks escrow to hold or release the order,
submits the evidence once and texts the seller once. ``reserve.py`` holds part of a seller's
payout at release and gives it back 120 days after the card payment.

Where the money comes from (``waterfall.py``): before release, the order's escrow; after
release, the seller's reserve, then its available balance, then the platform's
``loss:chargebacks:<CUR>``. A payout already sent is never reversed.
"""
