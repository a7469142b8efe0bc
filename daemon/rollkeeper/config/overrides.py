"""Environment overrides of config keys: ``ROLLKEEPER_<SECTION>__<KEY>``, without pydantic.

The loader applies them (:mod:`.loader`); ``config check`` lists them, also when it answers
from the validated-config cache, which is why they live apart from the schema.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Environment overrides are ``ROLLKEEPER_<SECTION>__<KEY>``.
ENVIRONMENT_PREFIX = "ROLLKEEPER_"
ENVIRONMENT_SEPARATOR = "__"


def environment_overrides(environ: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    """Every ``ROLLKEEPER_<SECTION>__<KEY>`` variable as (variable, section, key, raw value),
    sorted by variable name. Variables without ``__`` (``ROLLKEEPER_CONFIG``) are not
    overrides."""
    found = []
    for variable, value in environ.items():
        if not variable.startswith(ENVIRONMENT_PREFIX):
            continue
        rest = variable[len(ENVIRONMENT_PREFIX) :]
        if ENVIRONMENT_SEPARATOR not in rest:
            continue
        section, _, key = rest.partition(ENVIRONMENT_SEPARATOR)
        found.append((variable, section.lower(), key.lower(), value))
    return sorted(found)
