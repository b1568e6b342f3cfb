"""Sanctions screening: every seller and member name against the lists in force.

``lists.py`` reads OFAC's SDN files (CSV) and the UN consolidated list (XML) in their published
formats; ``matching.py`` compares names token by token with Jaro-Winkler (RapidFuzz) at a stated
threshold; ``service.py`` screens a party at registration and before each payout, opens a case for
a possible match (the party waits, ``pending_review``), records an admin's decision (``clear`` /
``block``), and screens every party again when a new version of the lists is loaded. The version
that decided is on every screening and every case.
"""
