"""Marketing channels: one table of rules maps an event's UTM fields, click ids and referrer
to a channel (see rules.py and docs/analytics.md)."""

from signup_sync.channels.rules import RULES, Channel, Signals, derive_channel

__all__ = ["RULES", "Channel", "Signals", "derive_channel"]
