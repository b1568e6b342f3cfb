"""Settlement reconciliation: providers' statements against the ledger, every break shown.

Pure Python (no chalice, stripe or boto3 here; Polars optional). The pieces:

- ``importers``: strict parsers of Stripe balance reports, MTN MoMo, Airtel Money and M-Pesa
  B2C statements and camt.053 bank statements into ``ProviderBatch``es (``ProviderLine``s);
  a malformed line raises ``StatementError`` with every bad line's number.
- ``ledger_source``: the ``LedgerSource`` port (``lines_for(provider, day_range)``),
  ``MemoryLedgerSource``, and the offline ledger CSV.
- ``engine``: ``reconcile_chunk`` (pure, per chunk), ``partition``, ``combine``,
  ``reconcile``; the ``Reconciliation`` result with the API's JSON and ``breaks.csv``.
- ``inputs``: what every path starts from: ``reconciliation_id``, ``read_statement``,
  ``statement_period``, ``widen`` and ``statement_inputs`` (the statement, the ledger lines
  of its period, the period).
- ``service``: ``reconcile_statement(source, content, ledger)``, what the API and the CLI call
  (a large CSV statement goes on to ``parallel``/``columnar`` where they run).
- ``reconciliations``: the ``Reconciliations`` service of the API (submit, page, breaks.csv),
  over an ``archive`` (S3, or memory) laid out by ``stored``.
- ``columnar``: the same reconciliation of a large CSV statement on Polars, where it is
  installed (the CLI, the sandbox, the bench; not Lambda): the common case in columns, every
  other key through the engine's group rules.
- ``parallel``, ``distributed``: the pure engine on several processes, or as a Step Functions
  Distributed Map over chunks in S3. Lambda runs ``distributed`` and the pure engine only:
  Polars is not in the package, and ``parallel`` forks only outside Lambda (both import
  their heavy modules inside the functions that use them).
- ``python -m chalicelib.recon FILE --source ... --ledger LEDGER.csv``: the finance CLI.
"""
from chalicelib.recon.engine import (  # noqa: F401
    STATUS_BALANCED,
    STATUS_BREAKS,
    Break,
    ChunkResult,
    Reconciliation,
    SettlementRow,
    chunk_of,
    combine,
    partition,
    reconcile,
    reconcile_chunk,
)
from chalicelib.recon.importers import parse_statement  # noqa: F401
from chalicelib.recon.inputs import reconciliation_id, statement_period  # noqa: F401
from chalicelib.recon.ledger_source import (  # noqa: F401
    LedgerSource,
    MemoryLedgerSource,
    ledger_batch,
    read_ledger_csv,
    write_ledger_csv,
)
from chalicelib.recon.model import (  # noqa: F401
    AMOUNT_MISMATCH,
    CLASSIFICATIONS,
    DUPLICATE,
    FEE,
    FX,
    MATCHED,
    MISSING_AT_PROVIDER,
    MISSING_IN_LEDGER,
    OUTCOMES,
    PAID_TWICE,
    REPEATED_LINE,
    SOURCES,
    SPLIT,
    LedgerBatch,
    LedgerLine,
    ProviderBatch,
    ProviderLine,
    StatementError,
)
from chalicelib.recon.service import reconcile_statement  # noqa: F401
