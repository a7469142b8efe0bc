"""Keeping the archive honest over years: verify, scheduled scrub, adopt, find.

A backup is worth what can be restored from it. These modules re-hash archived files against
the hashes recorded when they were stored (:mod:`~rollkeeper.archive.verify`), rotate that check
through the archive a bounded number of bytes at a time (:mod:`~rollkeeper.archive.scrub`; which
files a run takes and whether its budget meets the rotation: :mod:`~rollkeeper.archive.rotation`),
index folders the user copied before rollkeeper so their content is not stored twice
(:mod:`~rollkeeper.archive.adopt`), and find a photo by its phone name or capture date
(:mod:`~rollkeeper.archive.find`).
"""
