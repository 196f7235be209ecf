"""Use cases that own the transactions: ingest, outbox, cases, rules administration."""
