"""The funnel dashboard: server-rendered pages with inline SVG charts, behind a session cookie."""
