"""Funnel events: validation, the normalised record, and ingestion into leads and events."""
