"""Configuration files: YAML, TOML or JSON in, frozen dataclass trees out, and back.

Every run in simreal is described by one frozen dataclass tree (a render job, a training's
:class:`~simreal.tasks.config.TrainConfig`, an experiment's scale preset). This module is the one place that
turns a file into such a tree and a tree into a file, so that ``--config FILE`` means the same thing for
every command and a run's own written config is accepted back unchanged.

* :func:`read_config_file` reads ``.yaml`` / ``.yml`` / ``.toml`` / ``.json`` into a plain mapping.
* :func:`build` makes a dataclass instance from a mapping, strictly: an unknown key, a missing required
  field or a value of the wrong type is one :class:`~simreal.errors.SimrealError` that names the file and
  the dotted field path (``appearance.gamma: expected 2 numbers, got 'x'``).
* :func:`to_plain` is the inverse (JSON types only: tuples become lists, dict keys strings), so
  ``build(cls, to_plain(x)) == x``.
* :func:`merge` lays one mapping over another (a file over the defaults, command-line flags over a file).

Supported field types: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]``, ``X | None``, nested
dataclasses, ``tuple[T, ...]``, fixed-length ``tuple[T1, T2]``, ``list[T]`` and ``dict[K, V]``.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Lens:
    ...     fov_deg: tuple[float, float] = (100.0, 140.0)
    >>> build(Lens, {"fov_deg": [90, 120]})
    Lens(fov_deg=(90.0, 120.0))
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar, Union, get_args, get_origin

from simreal.errors import SimrealError

T = TypeVar("T")

#: File suffixes :func:`read_config_file` understands.
CONFIG_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML, TOML or JSON file holding one mapping.

    Raises:
        SimrealError: missing file, unknown suffix, a syntax error (with the parser's line), or a file
            whose top level is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise SimrealError("config file not found", path)
    suffix = path.suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise SimrealError(f"unknown config file type {suffix!r}; use one of {', '.join(CONFIG_SUFFIXES)}", path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SimrealError("config file is not UTF-8 text", path) from None
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # each parser has its own error type; all mean "not valid syntax"
        detail = " ".join(str(exc).split())
        raise SimrealError(f"cannot parse the config file ({exc.__class__.__name__}: {detail})", path) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SimrealError(f"a config file must hold a mapping of fields, got {type(data).__name__}", path)
    return data


def write_config_file(path: str | Path, obj: Any) -> Path:
    """Write a dataclass tree (or a plain mapping) as YAML (``.yaml``/``.yml``) or JSON, atomically.

    Keys are sorted, so the same config gives the same bytes.
    """
    from simreal.atomic import write_json, write_text

    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise SimrealError("config files are written as YAML (.yaml, .yml) or JSON (.json)", path)
    plain = to_plain(obj)
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        write_text(path, yaml.safe_dump(plain, sort_keys=True, default_flow_style=None))
    else:
        write_json(path, plain)
    return path


def to_plain(obj: Any) -> Any:
    """JSON types of a dataclass tree: dataclasses -> dicts, tuples -> lists, dict keys -> strings."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` laid onto ``base``: nested mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build(cls: type[T], mapping: Mapping[str, Any], *, source: str | Path | None = None, prefix: str = "") -> T:
    """A ``cls`` instance from a mapping of its fields (nested dataclasses from nested mappings).

    Args:
        cls: a dataclass type.
        mapping: field name -> value; missing fields take their defaults.
        source: the file the mapping came from, named in errors.
        prefix: dotted path of ``cls`` inside a larger tree, named in errors.

    Raises:
        SimrealError: unknown keys (listing the known ones), missing required fields, wrong types, and
            whatever the dataclass's own ``__post_init__`` validation raises.
    """
    if not isinstance(mapping, Mapping):
        raise SimrealError(f"{prefix or 'config'}: expected a mapping of fields, got {_show(mapping)}", source)
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        where = f" in {prefix}" if prefix else ""
        raise SimrealError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}{where}; "
            f"known: {', '.join(fields)}",
            source,
        )
    kwargs = {}
    for name, f in fields.items():
        path = f"{prefix}.{name}" if prefix else name
        if name in mapping:
            kwargs[name] = _convert(hints[name], mapping[name], path, source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SimrealError(f"{path}: required field missing", source)
    try:
        return cls(**kwargs)
    except SimrealError as exc:
        if source is not None and exc.path is None:
            raise SimrealError(str(exc), source) from None
        raise


def _hints(cls: type) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    return typing.get_type_hints(cls, globalns=vars(module) if module else None)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(tp: Any, value: Any, path: str, source: str | Path | None) -> Any:
    """``value`` as type ``tp`` (recursively), or a SimrealError naming ``path``."""
    origin, args = get_origin(tp), get_args(tp)

    def fail(expected: str) -> SimrealError:
        return SimrealError(f"{path}: expected {expected}, got {_show(value)}", source)

    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _convert(options[0], value, path, source)
        for option in options:
            try:
                return _convert(option, value, path, source)
            except SimrealError:
                continue
        raise fail(" or ".join(_name(o) for o in options))
    if origin is Literal:
        if value in args and not (isinstance(value, bool) and not any(isinstance(a, bool) for a in args)):
            return value
        raise fail("one of " + ", ".join(repr(a) for a in args))
    if dataclasses.is_dataclass(tp):
        return build(tp, value, source=source, prefix=path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail("true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise fail("an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise fail("a number")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, Path):
            return str(value)
        raise fail("a string")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise fail(f"a list ({_name(tp)})")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{path}[{i}]", source) for i, v in enumerate(value))
        if len(value) != len(args):
            raise fail(f"{len(args)} values ({_name(tp)})")
        return tuple(_convert(a, v, f"{path}[{i}]", source) for i, (a, v) in enumerate(zip(args, value)))
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise fail(f"a list ({_name(tp)})")
        return [_convert(args[0] if args else Any, v, f"{path}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise fail(f"a mapping ({_name(tp)})")
        kt, vt = args if args else (Any, Any)
        out = {}
        for k, v in value.items():
            key = k
            if kt is int and isinstance(k, str):
                try:
                    key = int(k)
                except ValueError:
                    raise SimrealError(f"{path}: key {k!r} is not an integer", source) from None
            out[_convert(kt, key, f"{path} key", source)] = _convert(vt, v, f"{path}[{k!r}]", source)
        return out
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise fail(_name(tp))


def _name(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin is None:
        return getattr(tp, "__name__", str(tp))
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    inner = ", ".join("..." if a is Ellipsis else _name(a) for a in args)
    return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
