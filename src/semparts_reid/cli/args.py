"""Turn a configuration dataclass into command-line flags and back.

Every field of a dataclass such as :class:`~semparts_reid.engine.config.TrainConfig`
becomes ``--field-name``, and so does every field of a nested dataclass (a
``TrainConfig`` group: ``optim.lr`` is ``--lr``), so the flags stay flat. A flag's
help text is the field's ``metadata["help"]`` and its type is taken from the annotation
(``bool`` fields get ``--flag/--no-flag``; tuples take several values; an optional
field takes ``none`` for None, or the word in its ``metadata["none_word"]``, e.g.
``--triplet-margin soft``). Only flags the user actually gave override the defaults, so
a config built from ``--resume`` or from a recipe keeps its own values otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterator
from typing import Any, TypeVar, Union, get_args, get_origin

T = TypeVar("T")

_MISSING = object()


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """Return ``(inner, is_optional)`` for ``X | None`` / ``Optional[X]``."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _scalar_parser(tp: Any, optional: bool, none_word: str | None = None) -> Any:
    if tp in (int, float, str):
        base = tp
    elif get_origin(tp) is typing.Literal:
        base = type(get_args(tp)[0])
    else:
        base = str
    if not optional:
        return base

    def parse(text: str) -> Any:
        words = ("none", "null", "", *((none_word.lower(),) if none_word else ()))
        return None if text.lower() in words else base(text)

    parse.__name__ = base.__name__
    return parse


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | Any, cls: type, *, exclude: tuple[str, ...] = ()
) -> None:
    """Add one flag per field of dataclass ``cls`` to ``parser`` (or an argument group).

    Defaults are not set on the parser (``argparse.SUPPRESS``): use
    :func:`dataclass_from_args` to build the instance, which applies only the flags the
    user gave on top of a base instance.
    """
    for field, tp, optional in _leaf_fields(cls):
        if field.name in exclude:
            continue
        default = (
            field.default
            if field.default is not dataclasses.MISSING
            else (
                field.default_factory()  # type: ignore[misc]
                if field.default_factory is not dataclasses.MISSING
                else _MISSING
            )
        )
        help_text = field.metadata.get("help", "")
        if default is not _MISSING:
            help_text = f"{help_text} (default: {default!r})".strip()
        kwargs: dict[str, Any] = {
            "dest": field.name,
            "default": argparse.SUPPRESS,
            "help": help_text,
        }
        origin = get_origin(tp)
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin in (tuple, list):
            args = [a for a in get_args(tp) if a is not Ellipsis]
            kwargs["type"] = _scalar_parser(args[0] if args else str, False)
            has_ellipsis = Ellipsis in get_args(tp)
            kwargs["nargs"] = "+" if (origin is list or has_ellipsis or not args) else len(args)
            kwargs["metavar"] = field.name.upper()
        else:
            kwargs["type"] = _scalar_parser(tp, optional, field.metadata.get("none_word"))
            if get_origin(tp) is typing.Literal:
                kwargs["choices"] = list(get_args(tp))
            kwargs["metavar"] = field.name.upper() if "choices" not in kwargs else None
            if kwargs["metavar"] is None:
                del kwargs["metavar"]
        parser.add_argument(_flag(field.name), **kwargs)


def dataclass_from_args(cls: type[T], namespace: argparse.Namespace, base: T | None = None) -> T:
    """Build an instance of ``cls`` from ``base`` (or the defaults) plus the given flags."""
    given: dict[str, Any] = {}
    for field, tp, _ in _leaf_fields(cls):
        if hasattr(namespace, field.name):
            value = getattr(namespace, field.name)
            if get_origin(tp) is tuple and isinstance(value, list):
                value = tuple(value)
            given[field.name] = value
    return _with(base if base is not None else cls(), given)  # type: ignore[return-value]


def _leaf_fields(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Any, bool]]:
    """``(field, type, optional)`` of every init field of ``cls`` that is not itself a
    dataclass, depth first through the nested dataclasses (a ``TrainConfig`` group)."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        tp, optional = _unwrap_optional(hints[field.name])
        if dataclasses.is_dataclass(tp):
            yield from _leaf_fields(tp)  # type: ignore[arg-type]
        else:
            yield field, tp, optional


def _with(obj: Any, given: dict[str, Any]) -> Any:
    """``obj`` with the leaf values in ``given`` (by flat name) replaced, nested groups
    included; ``obj`` itself when nothing changes."""
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            new = _with(value, given)
            if new is not value:
                changes[field.name] = new
        elif field.name in given:
            changes[field.name] = given[field.name]
    return dataclasses.replace(obj, **changes) if changes else obj
