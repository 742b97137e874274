"""CSV import of funnel events: manual lists, referrals, sign-ups (any source as a fallback)."""
