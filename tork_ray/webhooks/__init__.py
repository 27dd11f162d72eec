"""Webhooks (SPEC §6.4): events chosen in the coordinator's transaction, stored in an outbox, sent by a sender."""
