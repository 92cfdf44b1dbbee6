"""Model-change events (the Rust side's wire/src/model.rs): "order 42 of app shop was updated" becomes an
event on ``models.shop.order`` whose kwargs every subscriber relies on:
``{"action", "model", "pk", "data", "changed"}``, or for a sync ``{"action": "synced", "model", "rows"}``
with each row's pk first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from . import uri
from .errors import Invalid
from .event import Event, _kind, _strings

#: Topic prefix of model-change events unless configured otherwise.
DEFAULT_MODEL_PREFIX = "models."

ACTIONS = ("created", "updated", "deleted", "synced")


def check_model_name(name: Any) -> str:
    """A model name is ``<app>.<model>``: at least two components of a valid URI."""
    if not isinstance(name, str):
        raise Invalid("model", f"expected a string, got {_kind(name)}")
    reason = uri.check(name)
    if reason:
        raise Invalid("model", f"model name {name!r} is not valid: {reason}")
    if "." not in name:
        raise Invalid("model", f"model name {name!r} is not valid: expected <app>.<model>, e.g. shop.order")
    return name


def _data(field: str, data: Any) -> Dict[str, Any]:
    if not isinstance(data, Mapping):
        raise Invalid(field, f"model data must be a mapping (a JSON object), got {_kind(data)}")
    for key in data:
        if not isinstance(key, str):
            raise Invalid(field, f"field names must be strings, got {_kind(key)} ({key!r})")
    return dict(data)


def created_kwargs(model: str, pk: Any, data: Mapping[str, Any]) -> Dict[str, Any]:
    """A new row: `changed` lists every field of `data`, since all of them are new."""
    check_model_name(model)
    data = _data("data", data)
    return {"action": "created", "model": model, "pk": pk, "data": data, "changed": list(data)}


def updated_kwargs(model: str, pk: Any, data: Mapping[str, Any], changed: Sequence[str]) -> Dict[str, Any]:
    """A changed row: `data` is the row after the change, `changed` the fields that changed."""
    check_model_name(model)
    data = _data("data", data)
    return {"action": "updated", "model": model, "pk": pk, "data": data,
            "changed": _strings("changed", changed)}


def deleted_kwargs(model: str, pk: Any) -> Dict[str, Any]:
    """A removed row: no data, nothing changed."""
    check_model_name(model)
    return {"action": "deleted", "model": model, "pk": pk, "data": {}, "changed": []}


def synced_kwargs(model: str, rows: Iterable[Tuple[Any, Mapping[str, Any]]]) -> Dict[str, Any]:
    """Every row of the model as ``(pk, data)`` pairs: each row goes out as its data with the pk inserted
    first under ``"pk"`` (the pk wins over a data field named ``pk``)."""
    check_model_name(model)
    out: List[Dict[str, Any]] = []
    for index, pair in enumerate(rows):
        try:
            pk, data = pair
        except (TypeError, ValueError):
            raise Invalid(f"rows[{index}]", f"expected a (pk, data) pair, got {_kind(pair)}") from None
        data = _data(f"rows[{index}]", data)
        row: Dict[str, Any] = {"pk": pk}
        row.update((field, value) for field, value in data.items() if field != "pk")
        out.append(row)
    return {"action": "synced", "model": model, "rows": out}


def model_event(kwargs: Dict[str, Any], prefix: str = DEFAULT_MODEL_PREFIX, **options: Any) -> Event:
    """The event carrying model-change `kwargs` on ``<prefix><app>.<model>``; `options` are
    :class:`Event` keyword options (eligible_authid, realm, id, ...)."""
    return Event(f"{prefix}{kwargs['model']}", kwargs=kwargs, **options)
