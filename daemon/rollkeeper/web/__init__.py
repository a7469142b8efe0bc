"""The read-only status page that ``rollkeeper run`` serves when ``[web] enabled = true``.

What ``status --json`` knows, as a page: per phone whether it is backed up and why, the transfer
under way with a live progress bar, the newest photos as thumbnails and archived photos per
month. :mod:`.server` runs it on the service's loop (aiohttp), :mod:`.app` holds the routes,
:mod:`.access` the token, cookie, Host and header rules, :mod:`.feed` the live status,
:mod:`.page_data` the photos and months, :mod:`.thumbnails` the cache and the limited worker
process (:mod:`.thumbnail_worker`) that decodes photos. docs/web.md is the user's side.
"""
