"""Signed webhooks: the events a job's durable state changes emit, their
Standard Webhooks signature, the outbox (a delivery queue) and the deliverer
that sends them (docs/design.md, "Webhooks")."""
