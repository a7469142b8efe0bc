"""The running service: its lifecycle, the scheduler's backup jobs, health checks, backup-once.

:mod:`.runtime` starts and stops everything in order (the parts come from
:mod:`rollkeeper.bootstrap`); :mod:`.scheduler` turns attach and detach events into scheduled,
retried backup runs; :mod:`.backup_once` is the same run without the scheduler
(``backup-now``); both run a phone through :mod:`.phone_backup`'s one sequence (session,
admission, run); :mod:`.health` is the periodic staleness check.
"""
