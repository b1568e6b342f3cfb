"""The embedded local world: moto's server (DynamoDB, Step Functions, S3, Lambda
registry), provider simulators speaking the real wire formats, and the runner
behind ``make run`` / ``make demo``. Never imported by ``chalicelib`` or ``app.py``;
never deployed.
"""
