"""Orders and the escrow lifecycle: pricing, the eWTP tariff-free rule, payment into
escrow, customs outcomes, release at the locked rates, refunds. Pure rules over ports
(documents, ledger, quotes, card gateway, workflow); no chalice, no stripe."""
