"""``python -m chalicelib.recon FILE --source SOURCE [--ledger LEDGER.csv]``: reconcile from a terminal.

Prints the summary, the settlement per provider, currency and day, and the first
breaks as plain-text tables. Exit status: 0 no breaks, 1 breaks found, 2 the
input is malformed or unreadable (the error lists every bad line).

``--ledger`` reads the offline ledger export (``ledger_source.read_ledger_csv``); a large
statement with an export runs on the columnar engine where Polars is installed (``columnar``).
Without it the CLI reads the deployed ledger itself (``ledger_records.StoreLedgerSource``
over the DynamoDB transfers table named by ``MIZANI_TABLE_PREFIX``, with the usual AWS
credentials and endpoint settings).
"""
from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal

from chalicelib.money import exponent
from chalicelib.recon.engine import Reconciliation
from chalicelib.recon.inputs import DEFAULT_SLACK_DAYS, reconciliation_id
from chalicelib.recon.ledger_source import MemoryLedgerSource, read_ledger_csv
from chalicelib.recon.model import OUTCOMES, SOURCES, StatementError
from chalicelib.recon.parallel import reconcile_parallel
from chalicelib.recon.service import reconcile_statement

EXIT_BALANCED, EXIT_BREAKS, EXIT_MALFORMED = 0, 1, 2


def _amount(minor: int | None, currency: str) -> str:
    if minor is None:
        return "-"
    exp = exponent(currency)
    return f"{Decimal(minor).scaleb(-exp):,.{exp}f}"


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    out = []
    for row in [header, *rows]:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


def render(rec: Reconciliation, max_breaks: int = 20) -> str:
    """The plain-text report."""
    lines = [f"reconciliation {rec.reconciliation_id}  source {rec.source}  provider {rec.provider}  "
             f"status {rec.status}", ""]
    summary = rec.summary
    rows = [[k, f"{summary[k]:,}"] for k in ("lines", *OUTCOMES, "not_settled", "ledger_lines", "outside_period")]
    rows.append(["classified (matched)", ", ".join(f"{k} {v:,}" for k, v in summary["classified"].items())])
    lines += _table(["summary", "count"], rows, {1}) + [""]
    rows = [[r.provider, r.currency, r.day.isoformat(), _amount(r.expected, r.currency),
             _amount(r.reported, r.currency), _amount(r.difference, r.currency), _amount(r.fees, r.currency),
             f"{r.lines:,}"] for r in rec.settlement]
    lines += _table(["provider", "currency", "day", "expected", "reported", "difference", "fees", "lines"],
                    rows, {3, 4, 5, 6, 7}) if rows else ["settlement: no lines"]
    lines.append("")
    if rec.breaks:
        shown = rec.breaks[:max_breaks]
        rows = [["" if b.line is None else b.line, b.reference, b.kind, b.outcome, b.classification or "",
                 _amount(b.ledger_minor, b.ledger_currency) + (f" {b.ledger_currency}" if b.ledger_currency else ""),
                 _amount(b.provider_minor, b.provider_currency)
                 + (f" {b.provider_currency}" if b.provider_currency else "")] for b in shown]
        title = f"breaks ({len(shown)} of {len(rec.breaks):,})"
        lines += [title] + _table(["line", "reference", "kind", "outcome", "classification", "ledger", "provider"],
                                  rows, {0, 5, 6})
    else:
        lines.append("no breaks")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.recon",
                                     description="Reconcile a provider statement against the ledger.")
    parser.add_argument("file", help="the statement file")
    parser.add_argument("--source", required=True, choices=sorted(SOURCES))
    parser.add_argument("--ledger", help="ledger lines exported as CSV "
                                         "(transfer_id,provider,kind,reference,amount_minor,currency,day)")
    parser.add_argument("--chunks", type=int, default=1, help="reconcile in this many chunks (same result)")
    parser.add_argument("--breaks", type=int, default=20, help="how many breaks to print (default 20)")
    parser.add_argument("--breaks-csv", help="write every break to this CSV file")
    parser.add_argument("--json", action="store_true", help="print the API's JSON document instead of tables")
    args = parser.parse_args(argv)
    try:
        with open(args.file, "rb") as f:
            content = f.read()
        if args.ledger:
            with open(args.ledger, "rb") as f:
                export = f.read()
            if args.chunks <= 1:  # the export as it is: the columnar engine reads it itself
                rec = reconcile_parallel(args.source, content, export, slack_days=DEFAULT_SLACK_DAYS,
                                         reconciliation_id=reconciliation_id(args.source, content))
            else:
                rec = reconcile_statement(args.source, content, MemoryLedgerSource(read_ledger_csv(export)),
                                          chunks=args.chunks)
        else:
            from chalicelib import settings
            from chalicelib.ledger.dynamo import DynamoLedgerStore
            from chalicelib.recon.ledger_records import StoreLedgerSource

            rec = reconcile_statement(args.source, content, StoreLedgerSource(DynamoLedgerStore(settings.get().table_prefix)),
                                      chunks=max(1, args.chunks))
    except OSError as e:
        print(f"error: {e.filename}: {e.strerror}", file=sys.stderr)
        return EXIT_MALFORMED
    except StatementError as e:
        print(f"error: {e.message}", file=sys.stderr)
        for n, why in e.errors[20:200]:
            print(f"  line {n}: {why}", file=sys.stderr)
        return EXIT_MALFORMED
    if args.breaks_csv:
        with open(args.breaks_csv, "w", newline="") as f:
            f.write(rec.breaks_csv())
    if args.json:
        print(json.dumps(rec.to_json(page=1, page_size=max(1, len(rec.breaks))), indent=2))
    else:
        sys.stdout.write(render(rec, args.breaks))
    return EXIT_BREAKS if rec.breaks else EXIT_BALANCED
