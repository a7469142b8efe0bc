"""Offsite copies of the archive, made by an existing engine (restic or rclone), not our own.

* :mod:`.engines` — what each engine is run with (argv, environment) and what its output says
  (snapshot id, bytes added); pure.
* :mod:`.process` — running the engine as a child process: its output kept, stopped on request.
* :mod:`.archive_check` — the one question asked before any copy: is the archive there? (An
  unmounted disk must never become an empty snapshot.)
* :mod:`.job` — one copy or check: the archive check, the engine, the optional retention, the
  record in the state database (``offsite_runs``) and the alert on failure.
* :mod:`.schedule` — when the service copies: after each complete backup, at most every
  ``min_interval_hours``.

The settings are plain values (:class:`.engines.OffsitePlan`) built by the composition root from
the config's ``[offsite]`` section; nothing here imports the config schema.
"""
