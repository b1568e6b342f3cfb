"""Mizani's domain, services and adapters. ``app.py`` is the only Chalice-facing module;
the domain packages (ledger, fx, escrow, payouts, notify, recon) never import chalice or stripe."""
