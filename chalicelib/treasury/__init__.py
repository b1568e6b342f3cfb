"""Treasury: the platform's open FX position, its limits, and the P&L of the promise.

At checkout an order locks the seller's payout in local currency; until release the platform
holds the buyer's money in another currency. Each such order is an FX *position*
(``positions``): opened at checkout against a per-currency capacity counter (one conditional
write, so two checkouts can never both take the last room under a limit), closed at release
(its realized P&L recorded at the rates of that moment) or at refund. ``exposure`` marks the
open positions to market with the rate source. Reads only, except the positions themselves:
no code here moves money.
"""
