"""What ``rollkeeper audit`` finds out, apart from the command line: the evidence behind
"backed up".

With the phone attached, list and stat every file of its media folders afresh (no shortcut
from earlier scans), and classify each one against the state database and the archive on disk:

* ``archived``: the archive holds it, the file is on disk with the recorded size (with
  ``--hash``: and the recorded content hash);
* ``archive_damaged``: the database says archived but the archive file is missing, of another
  size or (``--hash``) other content;
* ``pending``: not copied yet (new since the last backup, or its copy not finished);
* ``failed``: its copy failed (with the reason), or the phone's entry was refused as unsafe;
* ``excluded``: left out by a filter of the current config (with the reason).

Originals not on the phone (iCloud "Optimize iPhone Storage") leave no file in the media
folder, so they are found from the phone's Photos library (``/PhotoData/Photos.sqlite``): assets
it lists under DCIM whose file the listing lacks are ``not_on_phone``. Where the library cannot
be read the answer is ``unknown``, said as such.

The audit only reads: the phone (over its own AFC connection), the state database (read-only)
and the archive. It may run while the service runs. Exit status: 0 only when nothing is
pending, failed or damaged; 1 when something is; 2 when the audit could not be done.

:mod:`.classify` is the pure verdict on each file; :mod:`.listing` lists the phone afresh,
:mod:`.library` reads its Photos library, :mod:`.gather` puts a phone's audit together with the
state and the archive; :mod:`.document` is the ``--json`` document and :mod:`.text` the words.
"""
