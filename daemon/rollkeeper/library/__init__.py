"""The phone's Photos library: a snapshot copied when it changed, and a reader for any iOS.

* :mod:`.snapshot` copies ``/PhotoData/Photos.sqlite`` with its ``-wal`` and ``-shm`` into the
  state folder when the phone's stat of it changed, resumable, checked against the phone after
  the copy (:mod:`.wal`, :mod:`.phone_copy`), sealed into one file (:mod:`.database_file`),
  and falls back to the last good snapshot when every copy is torn.
* :mod:`.schema` finds the tables and columns of the library from its own schema;
  :mod:`.reader` reads its assets, every value untrusted, into
  :class:`rollkeeper.domain.library.LibraryAsset`.
* :mod:`.xmp` writes the XMP sidecars, :mod:`.sidecars` keeps them (versions in the state,
  never over another tool's edit), :mod:`.album_folders` the optional album views.
"""
