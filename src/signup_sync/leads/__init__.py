"""Leads: one row per person, identity rules and the bulk upsert that keeps their state."""
