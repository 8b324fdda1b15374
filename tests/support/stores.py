"""Reading any store through the store interface only (for tests)."""

from __future__ import annotations


def all_ids(view) -> list[int]:
    """Every live chunk id of a view, document by document in text order."""
    return [i for source in sorted(view.manifest.files) for i in view.ids_of(source)]
