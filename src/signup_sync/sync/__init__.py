"""The sync engine: source configuration, per-page runs under a lease, the schedule.

``runner.run_sync`` runs one source; ``service`` runs sources on demand and reports
status; ``scheduler`` runs them daily; ``sources_service`` manages their configuration.
"""
