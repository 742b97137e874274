"""Funnel analytics computed from per-lead state."""
