"""One declaration per setting, and everything that follows from it.

A frozen dataclass of settings declares each of its fields with :func:`setting` (or
:func:`secret`): the annotation is the type, the first argument the default, the rest says how
a user sets it and what a good value is. :func:`declarations` turns the fields into resolved
:class:`Setting` records (flag, variable, parser type, kind), and the rest of this module
derives from those records alone: the argument parser, the reading of environment variables,
the conversions and checks with errors that name where the user set the value, and the key
read from a variable or a file. Nothing here knows any particular setting (a secret is worded
as a key, the one secret there is); the server's own settings are in
:mod:`wyoming_lightning.settings.config`.

Why a field and not a separate table: the dataclass stays what ``mypy --strict`` and every
reader see (real types, real defaults), and a setting cannot exist in the table without
existing on the dataclass, or the other way round.
"""

from __future__ import annotations

import argparse
import hmac
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import Field, dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints, overload

T = TypeVar("T")
R = TypeVar("R")

#: A check says what is wrong with a value ("must be positive"), or None when it is fine.
Check = Callable[[Any], str | None]
#: A conversion from what the parser holds to the field's value; ``where`` is the flag or the
#: variable the value came from, for the error (a :class:`ConfigError`).
Convert = Callable[[Any, str], Any]

_KEY = "wyoming_lightning.setting"


class ConfigError(ValueError):
    """A setting is missing or wrong; the message says which and how to fix it."""


class Secret:
    """A string that will not print itself, so the key cannot leak through a log or a repr."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        # Constant-time, so that equal settings compare equal without a timing side channel.
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


class Kind(Enum):
    """How a setting appears on the command line."""

    VALUE = "value"
    """``--flag VALUE``."""
    SWITCH = "switch"
    """``--flag`` / ``--no-flag``; the variable takes yes/no words."""
    OPTIONAL = "optional"
    """``--flag [VALUE]``: alone, it means the declared ``const``."""
    REPEATED = "repeated"
    """``--flag VALUE`` once per value; the variable holds a comma-separated list."""
    SECRET = "secret"
    """No flag (it would show in ``ps``): the variable, ``VARIABLE_FILE`` or the file flag."""


@dataclass(frozen=True)
class Setting:
    """One setting as declared on its field, completed by :func:`declarations`."""

    help: str
    default: object
    """What the parser holds when nothing is set (the field's default before ``convert``)."""
    flag: str = ""
    env: str = ""
    kind: Kind = Kind.VALUE
    choices: tuple[str, ...] = ()
    parse: Callable[[str], object] | None = None
    """Text to value when parsed (argparse's ``type=``); raise ``ArgumentTypeError``."""
    convert: Convert | None = None
    check: Check | None = None
    const: str | None = None
    metavar: str | None = None
    show: Callable[[Any], str] | None = None
    """The value as a log line may show it (a URL without its credentials, say)."""
    file_flag: str = ""
    """For a secret: the flag naming a file that holds it."""
    file_flag_env: str = ""
    """For a secret: the file flag's own variable."""
    name: str = ""
    """The field's name, also the parser's ``dest``."""

    @property
    def file_env(self) -> str:
        """For a secret: the variable naming a file that holds it (Docker secrets)."""
        return self.env + "_FILE"

    @property
    def file_dest(self) -> str:
        return self.name + "_file"


@overload
def setting(
    default: T,
    help: str,
    *,
    flag: str = ...,
    env: str = ...,
    choices: tuple[str, ...] = ...,
    parse: Callable[[str], T] | None = ...,
    check: Check | None = ...,
    const: str | None = ...,
    metavar: str | None = ...,
    show: Callable[[T], str] | None = ...,
) -> T: ...


@overload
def setting(
    default: R,
    help: str,
    *,
    convert: Callable[[R, str], T],
    flag: str = ...,
    env: str = ...,
    choices: tuple[str, ...] = ...,
    parse: Callable[[str], R] | None = ...,
    check: Check | None = ...,
    const: str | None = ...,
    metavar: str | None = ...,
    show: Callable[[T], str] | None = ...,
    repeat: bool = ...,
) -> T: ...


def setting(
    default: object,
    help: str,
    *,
    convert: Convert | None = None,
    flag: str = "",
    env: str = "",
    choices: tuple[str, ...] = (),
    parse: Callable[[str], object] | None = None,
    check: Check | None = None,
    const: str | None = None,
    metavar: str | None = None,
    show: Callable[[Any], str] | None = None,
    repeat: bool = False,
) -> Any:
    """A dataclass field that is also a setting.

    ``flag`` defaults to the field's name in dashes without a trailing ``_s`` (the unit of
    seconds): ``idle_timeout_s`` is ``--idle-timeout``. ``env`` defaults to the prefix and the
    flag in capitals. ``parse`` defaults to the annotation (int, float, str; ``X | None`` is
    X). With ``convert``, ``default`` is what the parser holds and the field's default is
    ``convert(default)``; ``repeat`` (only with ``convert``, which gets a list or the
    variable's text) makes a flag given once per value. ``show`` renders the value for
    :func:`summary` when ``str`` would reveal too much or too little.
    """
    kind = Kind.REPEATED if repeat else Kind.OPTIONAL if const is not None else Kind.VALUE
    record = Setting(
        help=help,
        default=default,
        flag=flag,
        env=env,
        kind=kind,
        choices=choices,
        parse=parse,
        convert=convert,
        check=check,
        const=const,
        metavar=metavar,
        show=show,
    )
    value = default if convert is None else convert(default, flag or "default")
    return field(default=value, metadata={_KEY: record})


def secret(help: str, *, env: str, file_flag: str) -> Any:
    """A :class:`Secret` field: set only by ``env``, by ``env`` + ``_FILE`` or by ``file_flag``
    (a file, so that the secret itself is never an argument)."""
    record = Setting(help=help, default=None, env=env, kind=Kind.SECRET, file_flag=file_flag)
    return field(default_factory=lambda: Secret(""), metadata={_KEY: record})


def _plain_type(hint: object) -> object:
    """``int | None`` is ``int``; anything else is itself."""
    if get_origin(hint) in (Union, types.UnionType):
        inner = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(inner) == 1:
            return inner[0]
    return hint


def _parse_for(name: str, hint: object) -> Callable[[str], object] | None:
    plain = _plain_type(hint)
    if plain is int:
        return int
    if plain is float:
        return float
    if plain is str:
        return None
    raise TypeError(f"setting {name}: a {hint} needs parse= or convert= in its declaration")


def _env_for(prefix: str, flag: str) -> str:
    return prefix + flag.removeprefix("--").replace("-", "_").upper()


def declarations(cls: type, env_prefix: str) -> tuple[Setting, ...]:
    """The settings of dataclass ``cls``, in field order, with every derived part filled in.

    Fields declared without :func:`setting` are facts derived from settings, not settings.
    """
    hints = get_type_hints(cls)
    out: list[Setting] = []
    dataclass_fields: tuple[Field[Any], ...] = fields(cls)
    for spec in dataclass_fields:
        record = spec.metadata.get(_KEY)
        if not isinstance(record, Setting):
            continue
        name, hint = spec.name, hints[spec.name]
        if record.kind is Kind.SECRET:
            out.append(
                replace(record, name=name, file_flag_env=_env_for(env_prefix, record.file_flag))
            )
            continue
        flag = record.flag or "--" + name.removesuffix("_s").replace("_", "-")
        kind = Kind.SWITCH if hint is bool else record.kind
        parse = record.parse
        if parse is None and record.convert is None and kind is not Kind.SWITCH:
            parse = _parse_for(name, hint)
        metavar = record.metavar
        if metavar is None and not record.choices and kind is not Kind.SWITCH:
            metavar = flag.removeprefix("--").replace("-", "_").upper()
        env = record.env or _env_for(env_prefix, flag)
        out.append(
            replace(record, name=name, flag=flag, env=env, kind=kind, parse=parse, metavar=metavar)
        )
    return tuple(out)


def yes_no(value: str) -> bool:
    """A yes/no word of an environment variable."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"not a yes/no value: {value!r}")


_KINDS_OF_NUMBER: dict[object, str] = {int: "a whole number", float: "a number"}


def from_env(spec: Setting, value: str) -> object:
    """A variable's value, parsed and checked as the flag's would be; the error names the
    variable, since that is where the user has to fix it."""
    name = spec.env
    if spec.kind is Kind.SWITCH:
        try:
            return yes_no(value)
        except ConfigError as err:
            raise ConfigError(f"{name}: {err}") from None
    converted: object = value
    if spec.parse is not None:
        try:
            converted = spec.parse(value)
        except argparse.ArgumentTypeError as err:
            raise ConfigError(f"{name}: {err}") from None
        except (TypeError, ValueError):
            kind = _KINDS_OF_NUMBER.get(spec.parse, "valid")
            raise ConfigError(f"{name}={value!r} is not {kind}") from None
    if spec.choices and converted not in spec.choices:
        raise ConfigError(f"{name}={value!r}: choose one of {', '.join(spec.choices)}")
    return converted


class _Repeatable(argparse.Action):
    """A flag given once per value; its first use replaces the environment's comma list."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        current = getattr(namespace, self.dest, None)
        items = list(current) if isinstance(current, list) else []
        items.append(values)
        setattr(namespace, self.dest, items)


def secret_hint(spec: Setting) -> tuple[str, str]:
    """The flag a user may try for a secret, and why there is none."""
    flag = "--" + spec.name.replace("_", "-")
    return flag, (
        f"there is no {flag}: a key on the command line would show in ps; set "
        f"{spec.env}, or put the key in a file and pass {spec.file_flag} FILE"
    )


def add_arguments(
    parser: argparse.ArgumentParser,
    settings: Sequence[Setting],
    env: Mapping[str, str],
) -> dict[str, str]:
    """Add each setting's flag, its default taken from the environment when set there; return
    the hints for flags that deliberately do not exist."""
    hints: dict[str, str] = {}
    for spec in settings:
        if spec.kind is Kind.SECRET:
            parser.add_argument(
                spec.file_flag,
                dest=spec.file_dest,
                default=env.get(spec.file_flag_env),
                metavar=spec.file_dest.upper(),
                help=f"file holding {spec.help} [env {spec.file_flag_env}]",
            )
            flag, hint = secret_hint(spec)
            hints[flag] = hint
            continue
        default = from_env(spec, env[spec.env]) if spec.env in env else spec.default
        kw: dict[str, Any] = {
            "dest": spec.name,
            "default": default,
            "help": f"{spec.help} [env {spec.env}]",
        }
        if spec.kind is Kind.SWITCH:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["metavar"] = spec.metavar
            if spec.choices:
                kw["choices"] = spec.choices
            if spec.parse is not None:
                kw["type"] = spec.parse
            if spec.kind is Kind.OPTIONAL:
                kw.update(nargs="?", const=spec.const)
            elif spec.kind is Kind.REPEATED:
                kw["action"] = _Repeatable
        parser.add_argument(spec.flag, **kw)
    return hints


def given_on_command_line(flag: str, argv: Sequence[str]) -> bool:
    return any(word in (flag, "--no-" + flag[2:]) or word.startswith(flag + "=") for word in argv)


def source(flag: str, env_name: str, argv: Sequence[str], env: Mapping[str, str]) -> str:
    """Where the user set ``flag``: on the command line, or through its variable."""
    if env_name in env and not given_on_command_line(flag, argv):
        return env_name
    return flag


def read_secret(
    spec: Setting,
    args: argparse.Namespace,
    argv: Sequence[str],
    env: Mapping[str, str],
) -> Secret:
    """The file flag (or its variable), else ``VARIABLE_FILE``, else the variable itself."""
    flag_path: str | None = getattr(args, spec.file_dest)
    path = flag_path or env.get(spec.file_env)
    if not path:
        return Secret(env.get(spec.env, "").strip())
    where = spec.file_env
    if flag_path:
        where = source(spec.file_flag, spec.file_flag_env, argv, env)
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        reason = err.strerror or "unreadable"
        raise ConfigError(f"{where}: cannot read the API key file {path}: {reason}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: the API key file {path} is not text") from None
    if not value:
        raise ConfigError(f"{where}: the API key file {path} is empty")
    return Secret(value)


def resolve(
    settings: Sequence[Setting],
    args: argparse.Namespace,
    argv: Sequence[str],
    env: Mapping[str, str],
) -> Iterator[tuple[Setting, object]]:
    """Each setting's final value: converted, checked, and blamed on its source when wrong."""
    for spec in settings:
        if spec.kind is Kind.SECRET:
            yield spec, read_secret(spec, args, argv, env)
            continue
        where = source(spec.flag, spec.env, argv, env)
        value: object = getattr(args, spec.name)
        if spec.convert is not None:
            value = spec.convert(value, where)
        if spec.check is not None and value is not None:
            problem = spec.check(value)
            if problem:
                raise ConfigError(f"{where} {problem}")
        yield spec, value


def _shown(spec: Setting, value: object) -> str:
    if spec.show is not None:
        return spec.show(value)
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "(empty)"
    return "(unset)" if value is None else str(value)


def summary(values: object, settings: Sequence[Setting]) -> str:
    """What differs from the defaults (of ``values``' own class, built without arguments), as a
    log line may show it: flags and values, a secret only as set or unset, each value through
    its ``show``."""
    defaults = type(values)()
    parts: list[str] = []
    for spec in settings:
        value = getattr(values, spec.name)
        if spec.kind is Kind.SECRET:
            parts.append(f"{spec.env} {'set' if value else 'unset'}")
        elif value == getattr(defaults, spec.name):
            continue
        elif spec.kind is Kind.SWITCH:
            parts.append(spec.flag if value else "--no-" + spec.flag.removeprefix("--"))
        else:
            parts.append(f"{spec.flag} {_shown(spec, value)}")
    return ", ".join(parts)
