"""Strict typed dataclasses from plain data, for configs and bench plans alike: `from_dict` builds one from
nested dicts and rejects an unknown key or a wrong type naming where it sits, `plain_dict` writes one back,
and the rule helpers (`rule`, `at_least`, `positive`, `fraction`) are what a section's `__post_init__`
checks its values with. Knows no section of its own.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from arctic_kd.errors import ConfigError, ConfigValueError


def rule(ok: bool, key: str, rule: str, value: Any) -> None:
    """`key` breaks `rule` unless `ok`: a `ConfigValueError` naming both and the value."""
    if not ok:
        raise ConfigValueError(f"{key} must be {rule}, got {value!r}")


def at_least(section: str, instance: Any, minimum: float, *names: str) -> None:
    """Each `section.name` of `names` at least `minimum`."""
    for name in names:
        value = getattr(instance, name)
        rule(value >= minimum, f"{section}.{name}", f"at least {minimum}", value)


def positive(section: str, instance: Any, *names: str) -> None:
    """Each `section.name` of `names` above 0."""
    for name in names:
        value = getattr(instance, name)
        rule(value > 0, f"{section}.{name}", "positive", value)


def fraction(section: str, instance: Any, name: str, low_open: bool = False, high_open: bool = False) -> None:
    """`section.name` within [0, 1], its ends excluded where asked."""
    value = getattr(instance, name)
    ok = (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
    rule(ok, f"{section}.{name}", f"in {interval}", value)


def plain_dict(instance: Any) -> dict[str, Any]:
    """A dataclass instance as nested dicts and lists (tuples become lists): the one form in which configs
    and bench plans are written to YAML, JSON and checkpoints."""
    return _plain(dataclasses.asdict(instance))


def _plain(value: Any) -> Any:
    """Tuples become lists so the dict is YAML- and `torch.load(weights_only=True)`-friendly."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass `cls` from nested dicts, checking names and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, found {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    values = {name: _coerce(hints[name], value, f"{where}: {name}") for name, value in data.items()}
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(
                f"{where}: {value!r} is not one of {', '.join(map(repr, typing.get_args(hint)))}"
            )
        return value
    if origin is tuple:
        return _coerce_tuple(hint, value, where)
    if origin is dict:  # a mapping of names (tune plans: method -> keys)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, found {value!r}")
        key_hint, value_hint = typing.get_args(hint)
        return {_coerce(key_hint, k, where): _coerce(value_hint, v, f"{where}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        return _coerce(next(o for o in options if o is not type(None)), value, where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {hint.__name__}, found {value!r}")
    return value


def _coerce_tuple(hint: Any, value: Any, where: str) -> tuple:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where}: expected a list, found {value!r}")
    args = typing.get_args(hint)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce(args[0], v, where) for v in value)
    if len(args) != len(value):
        raise ConfigError(f"{where}: expected {len(args)} values, found {len(value)}")
    return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
