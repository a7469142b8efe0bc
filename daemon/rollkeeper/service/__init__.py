"""The running service: its lifecycle, the scheduler's backup jobs, health checks, backup-once.

:mod:`.runtime` starts and stops everything in order; :mod:`.scheduler` turns attach and detach
events into scheduled, retried backup runs; :mod:`.backup_once` is the same run without the
scheduler (``backup-now``); :mod:`.health` is the periodic staleness check.
"""
