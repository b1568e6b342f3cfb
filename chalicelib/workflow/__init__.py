"""Step Functions glue: start the escrow execution (named after the order), answer
task tokens, and the bodies of the workflow's task functions (``tasks.py``)."""
