"""Telling sellers what happened, by SMS on a basic phone: an outbox of messages in
DynamoDB (written beside the business change) drained to an SMS gateway adapter."""
