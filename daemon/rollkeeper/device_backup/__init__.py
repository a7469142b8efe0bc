"""Full device backups (mobilebackup2, what Finder's "Back Up Now" makes) as point-in-time
snapshots: :mod:`.runner` drives one backup, :mod:`.safe_link` makes every host write a
rename, :mod:`.snapshots` keeps the history, :mod:`.manifest` reads a backup folder and
:mod:`.coordinator` decides when the service starts one (the attended rule)."""
