"""What rollkeeper needs of the machine it runs on, apart from phones and the archive.

The service manager (:mod:`.sd_notify`, :mod:`.unit_install`), one instance per state database
(:mod:`.single_instance`), private files and folders (:mod:`.permissions`), and logs
(:mod:`.logs`).
"""
