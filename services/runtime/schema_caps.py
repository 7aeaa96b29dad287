"""How a JSON Schema is made fit for a grammar a small model writes under: DuckLM's own
annotations (`x-` keys) taken out, and every string and array the schema admits bounded, so
that whatever the model writes ends inside its token budget. Used by the step schema
(directives.py) and the argument-fill schema (fill_schema.py). Pure functions of the schema.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_ARRAY_ITEMS", "cap_sizes", "without_annotations"]

# Most items of any array a grammar admits: with the string caps, it bounds the whole value.
MAX_ARRAY_ITEMS = 8


def without_annotations(schema: Any, *, descriptions: bool = True) -> Any:
    """A copy of `schema` without DuckLM's own `x-` keys (a grammar compiler needs none);
    without `description`s too unless `descriptions`."""
    if isinstance(schema, dict):
        return {
            key: without_annotations(value, descriptions=descriptions)
            for key, value in schema.items()
            if not str(key).startswith("x-") and (descriptions or key != "description")
        }
    if isinstance(schema, list):
        return [without_annotations(item, descriptions=descriptions) for item in schema]
    return schema


def cap_sizes(schema: Any, cap: int, item_cap: int | None = None) -> None:
    """Caps, in place, every string the schema admits at `cap` characters and every array at
    MAX_ARRAY_ITEMS, however deeply nested; an array's items get `item_cap` each (by default
    they share one string's budget between them)."""
    if isinstance(schema, dict):
        is_array = schema.get("type") == "array"
        if schema.get("type") == "string":
            schema["maxLength"] = min(int(schema.get("maxLength", cap)), cap)
        if is_array:
            schema["maxItems"] = min(int(schema.get("maxItems", MAX_ARRAY_ITEMS)), MAX_ARRAY_ITEMS)
            cap_sizes(schema.get("items"), item_cap if item_cap is not None else max(cap // MAX_ARRAY_ITEMS, 1))
        for key, value in schema.items():
            if key != "items" or not is_array:
                cap_sizes(value, cap, item_cap)
    elif isinstance(schema, list):
        for item in schema:
            cap_sizes(item, cap, item_cap)
