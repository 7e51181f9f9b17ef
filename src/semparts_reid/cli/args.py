"""Turn a configuration dataclass into command-line flags and back.

Every field of a dataclass such as :class:`~semparts_reid.engine.config.TrainConfig`
becomes ``--field-name``; its help text is the field's ``metadata["help"]`` and its
type is taken from the annotation (``bool`` fields get ``--flag/--no-flag``; tuples
take several values; an optional field takes ``none`` for None, or the word in its
``metadata["none_word"]``, e.g. ``--triplet-margin soft``). Only flags the user actually
gave override the defaults, so a config built from ``--resume`` or from a preset keeps
its own values otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
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
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name in exclude or not field.init:
            continue
        tp, optional = _unwrap_optional(hints[field.name])
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
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    given: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for name in names:
        if hasattr(namespace, name):
            value = getattr(namespace, name)
            tp, _ = _unwrap_optional(hints[name])
            if get_origin(tp) is tuple and isinstance(value, list):
                value = tuple(value)
            given[name] = value
    if base is None:
        return cls(**given)
    return dataclasses.replace(base, **given)  # type: ignore[type-var]
