"""Infrastructure as data: the merge template for ``chalice package`` and the
Step Functions definitions, plus the small Python helpers that read them.

``resources.base.json`` is the ONE definition of the DynamoDB tables: the deploy
(``python -m infra.build``), the sandbox (``sandbox/aws_local.py``) and the tests
(``tests/conftest.py``) all create tables from it through ``infra.tables``.
This package is build/dev tooling: it is never imported by ``app.py`` or
``chalicelib`` and is not deployed.
"""
