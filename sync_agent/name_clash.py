"""A file and a folder never share a name in a pool: the refusal, in words a user can act on.

Why: on a MinIO node an object ``a`` (any version of it, a delete marker too) hides every key under ``a/``
from listings, whichever was written first. The hidden files would be lost to every reader that lists: a
rebuilt catalog, a new device's first sync, the reconcile (see ``Catalog.name_clash``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sync_agent.errors import NameClashError

if TYPE_CHECKING:
    from sync_agent.catalog.store import Catalog

log = logging.getLogger(__name__)


def refuse_clash(catalog: Catalog, key: str) -> None:
    """Raise ``NameClashError`` when ``key`` cannot be stored beside what the pool holds (or held)."""
    found = catalog.name_clash(key)
    if found is None:
        return
    other, live = found
    if len(other) < len(key):  # a parent folder of the key is (or was) a file
        if live:
            why = (f"'{other}' is a file in the pool, so '{key}' cannot be stored inside a folder of that name. "
                   "Rename the file or the folder.")
        else:
            why = (f"'{other}' was a file, and the pool keeps its history (it was deleted or moved), so a folder "
                   f"cannot take its name: its files, such as '{key}', could not be listed. Give the folder "
                   "another name.")
    elif live:
        why = (f"'{key}' is a folder in the pool (it holds '{other}'), so a file cannot take its name. Rename the "
               "file or the folder.")
    else:
        why = (f"'{key}' was a folder, and the pool keeps the history of its files (such as '{other}'), so a file "
               "cannot take its name: that history could not be listed. Give the file another name.")
    log.info("refused '%s': %s", key, why)
    raise NameClashError(why, paths=[key, other])
