"""What ``rollkeeper status`` knows and how it says it, apart from the command line.

:mod:`.report` is the answer as data; :mod:`.gather` reads it (the state database read-only,
the service's instance lock without taking it, the last archive check's findings);
:mod:`.document` turns it into the ``--json`` document (docs/status.md) and :mod:`.text` into
the words for people. The rules behind the words are the pure :mod:`rollkeeper.domain.health`.
"""
