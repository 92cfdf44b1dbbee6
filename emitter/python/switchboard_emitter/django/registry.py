"""Which models publish their changes, and the signal handlers that do it after the transaction commits."""

from __future__ import annotations

import base64
import datetime
import decimal
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Type

from django.core.exceptions import ImproperlyConfigured
from django.db import models, router, transaction
from django.db.models.signals import post_delete, post_save

from .. import model as _model
from ..event import Event
from . import conf

log = logging.getLogger("switchboard_emitter.django")

Private = Callable[[Any], Iterable[str]]


class Stats:
    """Counters of the model events sent and of those that failed (logged, never raised into a save)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0

    def _count(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.sent += 1
            else:
                self.failed += 1

    def __repr__(self) -> str:
        return f"Stats(sent={self.sent}, failed={self.failed})"


stats = Stats()


def jsonable(value: Any) -> Any:
    """A model field's value as JSON can carry it: dates and times as ISO 8601 text, Decimal and UUID as
    text, files as their name, bytes as base64; lists, tuples and dicts element by element."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if hasattr(value, "name") and hasattr(value, "storage"):  # FieldFile
        return value.name or None
    return str(value)


def _value(field: models.Field, obj: models.Model) -> Any:
    value = field.value_from_object(obj)
    if isinstance(field, models.DecimalField) and value is not None:
        # as the database returns it: Decimal("30") saved in a decimal_places=2 field reads back "30.00"
        value = field.to_python(value)
        if field.decimal_places is not None and value.is_finite():
            value = value.quantize(decimal.Decimal(1).scaleb(-field.decimal_places))
    return value


@dataclass
class Registration:
    """One registered model: its model name (``app_label.model_name``), topic, published fields and the
    optional `private` callable (the authids that may receive an event about an object)."""

    model: Type[models.Model]
    name: str
    topic: str
    fields: List[models.Field]
    private: Optional[Private]

    @property
    def field_names(self) -> List[str]:
        return [f.name for f in self.fields]

    def pk(self, obj: models.Model) -> Any:
        return jsonable(obj.pk)

    def data(self, obj: models.Model) -> Dict[str, Any]:
        """The published fields of `obj`; a foreign key is its related object's pk."""
        return {f.name: jsonable(_value(f, obj)) for f in self.fields}

    def row(self, obj: models.Model) -> Dict[str, Any]:
        """The row a page renders (and a ``synced`` event carries): the pk first under ``pk``, then data."""
        row: Dict[str, Any] = {"pk": self.pk(obj)}
        row.update((k, v) for k, v in self.data(obj).items() if k != "pk")
        return row

    def options(self, obj: models.Model) -> Dict[str, Any]:
        opts: Dict[str, Any] = {"realm": conf.options().realm}
        if self.private is not None:
            authids = self.private(obj)
            if isinstance(authids, str):
                authids = [authids]
            opts["eligible_authid"] = [str(a) for a in (authids or [])]
        return opts

    def event(self, kwargs: Dict[str, Any], obj: Optional[models.Model]) -> Event:
        """The event carrying `kwargs`; with the options of `obj` (its realm and private authids)."""
        if obj is not None:
            return Event(self.topic, kwargs=kwargs, **self.options(obj))
        return Event(self.topic, kwargs=kwargs, realm=conf.options().realm)


_registry: Dict[Type[models.Model], Registration] = {}
_registry_lock = threading.Lock()


def _resolve_fields(model: Type[models.Model], fields: Optional[Sequence[str]],
                    exclude: Optional[Sequence[str]]) -> List[models.Field]:
    label = model._meta.label
    if fields is not None and exclude is not None:
        raise ImproperlyConfigured(f"switchboard.register({label}): give fields= or exclude=, not both")
    concrete = list(model._meta.concrete_fields)
    by_name = {}
    for f in concrete:
        by_name[f.name] = f
        by_name[f.attname] = f
    for option, names in (("fields", fields), ("exclude", exclude)):
        if names is None:
            continue
        if isinstance(names, str):
            raise ImproperlyConfigured(f"switchboard.register({label}): {option}= must be a list of field "
                                       f"names, not the string {names!r}")
        for name in names:
            if name not in by_name:
                known = ", ".join(f.name for f in concrete)
                raise ImproperlyConfigured(f"switchboard.register({label}): {option}= names {name!r}, which is "
                                           f"not a concrete field of {label} (fields: {known})")
    if fields is not None:
        return [by_name[n] for n in fields]
    excluded = {by_name[n].name for n in (exclude or ())}
    return [f for f in concrete if not f.primary_key and f.name not in excluded]


def register(model: Optional[Type[models.Model]] = None, *, fields: Optional[Sequence[str]] = None,
             exclude: Optional[Sequence[str]] = None, topic: Optional[str] = None,
             private: Optional[Private] = None, name: Optional[str] = None) -> Any:
    """Publishes `model`'s saves and deletes, after the transaction commits, as model events on
    ``models.<app_label>.<model_name>`` (or `topic`). `fields` or `exclude` choose the published fields
    (default: every concrete field but the pk); `private(obj)` returns the authids that may receive an
    event about `obj` (eligible_authid; such events are not stored in the gateway's history). Also usable
    as a class decorator: ``@switchboard.register(fields=[...])``."""
    if model is None:
        def decorate(m: Type[models.Model]) -> Type[models.Model]:
            register(m, fields=fields, exclude=exclude, topic=topic, private=private, name=name)
            return m
        return decorate
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        raise ImproperlyConfigured(f"switchboard.register expects a model class, got {model!r}")
    name = _model.check_model_name(name or model._meta.label_lower)
    prefix = "models."
    registration = Registration(model, name, topic or f"{prefix}{name}",
                                _resolve_fields(model, fields, exclude), private)
    try:
        Event(registration.topic).validate()  # a bad topic= fails here, not at the first save
    except ValueError as error:
        raise ImproperlyConfigured(f"switchboard.register({model._meta.label}): topic: {error}") from None
    if model._meta.proxy or model._meta.abstract:
        raise ImproperlyConfigured(f"switchboard.register({model._meta.label}): register the concrete model; "
                                   "its proxies publish as it")
    with _registry_lock:
        if model in _registry:
            raise ImproperlyConfigured(f"switchboard.register: {model._meta.label} is already registered")
        _registry[model] = registration
    # One receiver for every model (a proxy's save has the proxy as sender): unregistered ones cost a lookup.
    post_save.connect(_saved, weak=False, dispatch_uid="switchboard_emitter.django.saved")
    post_delete.connect(_deleted, weak=False, dispatch_uid="switchboard_emitter.django.deleted")
    return registration


def unregister(model: Type[models.Model]) -> None:
    with _registry_lock:
        _registry.pop(model, None)


def _lookup(sender: Any) -> Optional[Registration]:
    meta = getattr(sender, "_meta", None)
    return _registry.get(meta.concrete_model) if meta is not None else None


def registration(model: Any) -> Registration:
    """The registration of a model class, instance or queryset's model; LookupError when not registered."""
    if isinstance(model, models.QuerySet):
        model = model.model
    elif isinstance(model, models.Model):
        model = type(model)
    reg = _lookup(model)  # a proxy model publishes as its concrete model
    if reg is None:
        raise LookupError(f"{getattr(model, '__name__', model)!r} is not registered with switchboard")
    return reg


def registered() -> List[Registration]:
    return list(_registry.values())


def send(event: Event) -> bool:
    """Publishes `event`; on any failure logs it and counts it (``stats.failed``) instead of raising."""
    try:
        conf.get_emitter().publish(event)
    except Exception:
        stats._count(False)
        log.exception("switchboard: model event on %s not sent", event.topic)
        return False
    stats._count(True)
    return True


def _after_commit(event: Event, using: str) -> None:
    # Runs right away outside a transaction (autocommit), else when the outermost atomic block commits,
    # never when it rolls back.
    transaction.on_commit(lambda: send(event), using=using)


def _prepare(build: Callable[[], Event], label: str) -> Optional[Event]:
    # The event is built while the signal runs (the row as saved, the owner as now), sent after commit.
    try:
        return build()
    except Exception:
        stats._count(False)
        log.exception("switchboard: model event for %s not built", label)
        return None


def _saved(sender: Type[models.Model], instance: models.Model, created: bool, raw: bool = False,
           using: Optional[str] = None, update_fields: Optional[Iterable[str]] = None, **_: Any) -> None:
    reg = _lookup(sender)
    if reg is None or raw:  # raw: fixtures (loaddata), not a change the app made; sync afterwards
        return

    def build() -> Optional[Event]:
        data = reg.data(instance)
        if created:
            kwargs = _model.created_kwargs(reg.name, reg.pk(instance), data)
        else:
            if update_fields is not None:
                wanted = set(update_fields)
                changed = [f.name for f in reg.fields if f.name in wanted or f.attname in wanted]
                if not changed:
                    return None  # only unpublished fields were saved
            else:
                changed = reg.field_names
            kwargs = _model.updated_kwargs(reg.name, reg.pk(instance), data, changed)
        return reg.event(kwargs, instance)

    event = _prepare(build, reg.name)
    if event is not None:
        _after_commit(event, using or router.db_for_write(sender, instance=instance))


def _deleted(sender: Type[models.Model], instance: models.Model, using: Optional[str] = None, **_: Any) -> None:
    reg = _lookup(sender)
    if reg is None:
        return
    event = _prepare(lambda: reg.event(_model.deleted_kwargs(reg.name, reg.pk(instance)), instance), reg.name)
    if event is not None:
        _after_commit(event, using or router.db_for_write(sender, instance=instance))


def rows(queryset: Any) -> List[Dict[str, Any]]:
    """The rows of a registered model's queryset (or model class: all of them), as pages and ``synced``
    events carry them."""
    reg = registration(queryset)
    if not isinstance(queryset, models.QuerySet):
        queryset = reg.model._default_manager.all()
    return [reg.row(obj) for obj in queryset]


def sync(model: Any, queryset: Any = None) -> Any:
    """Sends one ``synced`` event with every row of `model` (or of `queryset`): the gateway's model view
    (``[[realms.models]]``) is seeded or replaced by it, and open pages resync. Call it after each gateway
    start (``manage.py switchboard_sync``) and after bulk changes that send no signals
    (``QuerySet.update``, ``bulk_create``). Raises EmitError when it cannot be sent; private models
    cannot be synced (a view is shared by every reader)."""
    reg = registration(model)
    if reg.private is not None:
        raise ImproperlyConfigured(f"switchboard.sync({reg.name}): a private model cannot be synced: its rows "
                                   "would reach every subscriber")
    qs = queryset if queryset is not None else reg.model._default_manager.all()
    pairs: List[Tuple[Any, Dict[str, Any]]] = [(reg.pk(o), reg.data(o)) for o in qs]
    event = reg.event(_model.synced_kwargs(reg.name, pairs), None)
    return conf.get_emitter().publish(event)
