"""Conversions: marking a lead converted and freezing its attribution."""
