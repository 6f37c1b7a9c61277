"""Every page of an MLflow `search_*` call."""

from __future__ import annotations

from typing import Any, Callable


def all_pages(search: Callable[..., Any], page_size: int = 1000) -> list[Any]:
    """Concatenate the pages of `search(max_results=..., page_token=...)`, e.g.
    `all_pages(client.search_experiments)`."""
    items: list[Any] = []
    token = None
    while True:
        page = search(max_results=page_size, page_token=token)
        items.extend(page)
        token = page.token
        if not token:
            return items
