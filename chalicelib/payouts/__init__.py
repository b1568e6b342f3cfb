"""Payouts: paying sellers' mobile-money wallets (MTN MoMo Disbursement, M-Pesa B2C).

``rails/`` holds the provider port (``PayoutRail``) and its adapters; the payout
service, limits, splitting and the ledger glue are built on top of that port.
"""
