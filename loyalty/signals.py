"""Signals of the points engine, for the apps above it (which it may not import)."""

from django.dispatch import Signal

# Sent by `loyalty.analytics.member_months_refresh` inside its transaction, with `program` and `entries`
# (the `IdMark` of the ledger the member summary covers), so that a higher app's summary of the same
# ledger (rewards' `RewardMonth`) is rebuilt with the same mark in the same transaction. A receiver
# returns the rows it wrote.
member_summary_refreshed = Signal()
