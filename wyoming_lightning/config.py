"""Flags, environment variables and secret files, turned into one validated :class:`Settings`.

Every flag has an environment variable (``--foo-bar`` is ``LIGHTNING_FOO_BAR``; the service URL
is ``LIGHTNING_URL``) so that Docker and the Home Assistant add-on can set everything without a
command line. The API key is the
exception: it never appears as a flag (it would show in ``ps``), only as ``SMALLEST_API_KEY``,
``SMALLEST_API_KEY_FILE`` or ``--api-key-file``.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cli import Parser, redact_url, uri_type
from .lightning.protocol import (
    DEFAULT_URL,
    DIALECT_CHOICES,
    Dialect,
    Keyword,
    detect_dialect,
    languages_for,
)

ENV_PREFIX = "LIGHTNING_"
VAD_CHOICES = ("silero", "webrtc", "off")
DEFAULT_VAD = "silero"
VAD_LAG_MS = {"silero": 48, "webrtc": 16, "off": 0}
"""How late each VAD's last "speech" frame ends after the speaker stopped (median on the
espeak commands, ``python -m benchmarks pause-budget``): the default of ``--vad-lag-ms``."""
#: Pulse streaming, US$ per minute of audio sent (docs/lightning-api.md: billed per second).
DEFAULT_PRICE_PER_MIN = 0.006


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

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


def parse_keywords(text: str) -> list[Keyword]:
    """``word:weight,phrase with spaces:3`` into keywords; an entry without a weight gets the
    service's default intensifier (1)."""
    keywords: list[Keyword] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        word, sep, weight = item.rpartition(":")
        if not sep:
            word, weight = item, ""
        try:
            value: float | None = float(weight) if weight else None
        except ValueError:
            word, value = item, None
        if value is not None and value <= 0:
            raise ConfigError(f"keyword weight must be positive: {item!r}")
        keywords.append(Keyword(word.strip(), value))
    return keywords


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know, validated once at start-up."""

    uri: str = "tcp://0.0.0.0:10300"
    service_url: str = DEFAULT_URL
    url_fixed: bool = False
    dialect: str = "auto"
    language: str = "en"
    api_key: Secret = field(default_factory=lambda: Secret(""))
    vad: str = DEFAULT_VAD
    pre_roll_ms: int = 300
    hangover_ms: int = 500
    max_utterance_s: float = 30.0
    early_finalize: bool = True
    finalize_after_ms: int = 400
    """Chosen on real speech (``python -m benchmarks pause``): 200 ms split one command in two
    at its natural pauses and cost 2-4 WER points; 400 ms costs about 1.2, for 200 ms more wait."""
    vad_lag_ms: int | None = None
    """``None``: the chosen VAD's own lag (``VAD_LAG_MS``)."""
    re_recognize: bool = False
    endpointing: bool = False
    no_speech_timeout_s: float = 8.0
    max_command_s: float = 15.0
    streaming: bool = True
    connect_timeout_s: float = 5.0
    send_timeout_s: float = 5.0
    stall_timeout_s: float = 2.0
    final_timeout_s: float = 10.0
    response_timeout_s: float = 30.0
    retries: int = 3
    fallback: str = "none"
    check_key: bool = False
    max_connections: int = 100
    idle_timeout_s: float = 30.0
    drain_timeout_s: float = 7.0
    keywords: tuple[Keyword, ...] = ()
    zeroconf: str | None = None
    debug: bool = False
    log_format: str = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    # Cost and access (issue 12): see access.py, quota.py, usage_store.py, metrics.py.
    allow: tuple[str, ...] = ()
    max_requests_per_client: int = 10
    daily_audio_limit_min: float | None = None
    price_per_min: float = DEFAULT_PRICE_PER_MIN
    data_dir: str | None = None
    metrics_port: int | None = None

    @property
    def local_only(self) -> bool:
        """No key: the server runs on the offline recognizer alone."""
        return not self.api_key

    @property
    def languages(self) -> tuple[str, ...]:
        """What clients may ask for: the service's codes, or English alone without a key
        (the bundled offline model is Whisper tiny.en)."""
        if self.local_only:
            return ("en",)
        return languages_for(self.service_dialect)

    @property
    def service_dialect(self) -> Dialect:
        """The dialect spoken to the service: ``--dialect``, else what the URL says, else Pulse."""
        return detect_dialect(self.service_url, Dialect.choice(self.dialect))


def _env_name(flag: str) -> str:
    if flag == "--lightning-url":
        return "LIGHTNING_URL"  # not LIGHTNING_LIGHTNING_URL
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _env_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"not a yes/no value: {value!r}")


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


def _split_list(value: object) -> list[str]:
    parts = value if isinstance(value, list) else [value or ""]
    return [item.strip() for part in parts for item in str(part).split(",") if item.strip()]


def parse_networks(items: Sequence[str]) -> tuple[str, ...]:
    """``--allow`` values into normalised networks (a bare address is one host)."""
    out: list[str] = []
    for item in items:
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(
                f"--allow {item!r} is not a network: give e.g. 192.168.1.0/24, 10.0.0.5 or fd00::/8"
            ) from None
    return tuple(out)


def log_format(text: str) -> str:
    """An argparse ``type=``: a logging format that can format a record, checked before any
    line is logged (a bad one would otherwise fail every log line)."""
    record = logging.makeLogRecord({"name": "wyoming_lightning", "msg": "message"})
    try:
        logging.Formatter(text, validate=True).format(record)
    except (ValueError, KeyError, TypeError) as err:
        reason = f"unknown field {err}" if isinstance(err, KeyError) else str(err)
        raise argparse.ArgumentTypeError(f"not a usable logging format ({reason})") from None
    return text


def _from_env(name: str, value: str, default: object, kw: Mapping[str, Any]) -> object:
    """An environment variable's value, converted and checked as the flag's would be; the error
    names the variable, since that is where the user has to fix it."""
    if isinstance(default, bool):
        try:
            return _env_bool(value)
        except ConfigError as err:
            raise ConfigError(f"{name}: {err}") from None
    convert = kw.get("type")
    converted: object = value
    if convert is not None:
        try:
            converted = convert(value)
        except argparse.ArgumentTypeError as err:
            raise ConfigError(f"{name}: {err}") from None
        except (TypeError, ValueError):
            kind = {int: "a whole number", float: "a number"}.get(convert, "valid")
            raise ConfigError(f"{name}={value!r} is not {kind}") from None
    choices = kw.get("choices")
    if choices is not None and converted not in choices:
        raise ConfigError(f"{name}={value!r}: choose one of {', '.join(map(str, choices))}")
    return converted


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line; each default comes from the environment when set there."""
    parser = Parser(
        prog="wyoming-lightning",
        description="Wyoming speech-to-text server for Smallest.ai Lightning / Pulse.",
        epilog="Every option can also be set by environment variable: --foo-bar is "
        "LIGHTNING_FOO_BAR (the service URL: LIGHTNING_URL). The API key comes from "
        "SMALLEST_API_KEY, SMALLEST_API_KEY_FILE or --api-key-file. "
        "The usage of recent days: wyoming-lightning usage --data-dir DIR [--days N].",
    )

    def option(flag: str, default: object, help_text: str, **kw: Any) -> None:
        name = _env_name(flag)
        if name in env:
            default = _from_env(name, env[name], default, kw)
        parser.add_argument(flag, default=default, help=f"{help_text} [env {name}]", **kw)

    def switch(flag: str, default: bool, help_text: str) -> None:
        option(flag, default, help_text, action=argparse.BooleanOptionalAction)

    d = Settings()
    option(
        "--uri",
        d.uri,
        "where to listen: tcp://HOST:PORT, unix://PATH or stdio://",
        type=uri_type(("tcp", "unix", "stdio"), server=True),
    )
    option(
        "--lightning-url",
        None,
        "service URL; today's Pulse service is .../waves/v1/stt/live (model=pulse is added "
        "when missing), the seed's Lightning service .../api/v1/lightning/get_text "
        f"(default {DEFAULT_URL})",
    )
    option(
        "--dialect",
        d.dialect,
        "protocol to speak: auto (from the URL's path; Pulse when it says nothing), "
        "pulse or lightning",
        choices=DIALECT_CHOICES,
    )
    option("--language", d.language, "language when the client names none")
    option("--api-key-file", None, "file holding the Smallest.ai API key")
    option("--vad", d.vad, "voice-activity detector that gates audio", choices=VAD_CHOICES)
    option("--pre-roll-ms", d.pre_roll_ms, "audio kept before speech starts", type=int)
    option("--hangover-ms", d.hangover_ms, "audio kept after speech stops", type=int)
    option("--max-utterance", d.max_utterance_s, "longest utterance in seconds", type=float)
    switch("--early-finalize", d.early_finalize, "settle each utterance when the speaker pauses")
    option(
        "--finalize-after-ms",
        d.finalize_after_ms,
        "silence after which an utterance is settled (0: when the gate closes)",
        type=int,
    )
    option(
        "--vad-lag-ms",
        d.vad_lag_ms,
        "how late the VAD notices speech has ended, so --finalize-after-ms counts from the "
        "speech (default: the VAD's own, "
        + ", ".join(f"{k} {v}" for k, v in VAD_LAG_MS.items() if v)
        + ")",
        type=int,
    )
    switch(
        "--re-recognize",
        d.re_recognize,
        "when speech resumes after a pause, send the whole command again (replaces the split)",
    )
    switch("--endpointing", d.endpointing, "end the command on silence without audio-stop")
    option(
        "--no-speech-timeout",
        d.no_speech_timeout_s,
        "with --endpointing: seconds of audio without speech after which the request ends empty",
        type=float,
    )
    option(
        "--max-command",
        d.max_command_s,
        "with --endpointing: longest command in seconds (Home Assistant's own cap is 15)",
        type=float,
    )
    switch("--streaming", d.streaming, "send transcript-start/chunk/stop events")
    option("--connect-timeout", d.connect_timeout_s, "seconds for the handshake", type=float)
    option("--send-timeout", d.send_timeout_s, "seconds for one send", type=float)
    option(
        "--stall-timeout",
        d.stall_timeout_s,
        "seconds a service session that owes a final may show no progress at all (no message, "
        "no pong, no audio taken) before it is replaced",
        type=float,
    )
    option(
        "--final-timeout",
        d.final_timeout_s,
        "seconds to wait after audio-stop for a live service, plus one per second of audio "
        "still without a final",
        type=float,
    )
    option(
        "--response-timeout",
        d.response_timeout_s,
        "seconds from audio-stop to the answer, at most",
        type=float,
    )
    option("--retries", d.retries, "reconnections per request", type=int)
    option("--fallback", d.fallback, "when the cloud fails", choices=("none", "local"))
    switch("--check-key", d.check_key, "test the API key at start-up")
    option("--max-connections", d.max_connections, "clients served at once", type=int)
    option("--idle-timeout", d.idle_timeout_s, "seconds a client may stay silent", type=float)
    option(
        "--drain-timeout",
        d.drain_timeout_s,
        "seconds running requests may take to finish on SIGTERM before they get an error "
        "(keep it under the stop timeout, 10 s in Docker and Home Assistant)",
        type=float,
    )
    option(
        "--keywords",
        "",
        "words to boost: 'word,phrase:weight' (weight 1 to 3; none: the service's default 1)",
    )
    option(
        "--zeroconf",
        None,
        "advertise on the network with this name (default: wyoming-lightning)",
        nargs="?",
        const="wyoming-lightning",
    )
    option(
        "--allow",
        "",
        "serve only clients from this network (CIDR; repeat, or comma-separate in the "
        "variable); default: everyone",
        action=_Repeatable,
        metavar="CIDR",
    )
    option(
        "--max-requests-per-client",
        d.max_requests_per_client,
        "requests one client address may run at once",
        type=int,
    )
    option(
        "--daily-audio-limit",
        None,
        "minutes of audio sent to the service per calendar day (local time); then the "
        "fallback, or error 'quota' (default: no limit)",
        type=float,
        metavar="MINUTES",
    )
    option(
        "--price-per-minute",
        d.price_per_min,
        "US$ per minute of audio sent, for the usage estimate",
        type=float,
    )
    option(
        "--data-dir",
        None,
        "directory for the usage file usage.sqlite3 (default: usage kept in memory)",
    )
    option(
        "--metrics-port",
        None,
        "serve Prometheus metrics on this port (0: any free port; default: off)",
        type=int,
    )
    switch("--debug", d.debug, "log everything")
    option("--log-format", d.log_format, "Python logging format", type=log_format)
    parser.add_version()
    parser.hints["--api-key"] = (
        "there is no --api-key: a key on the command line would show in ps; set "
        "SMALLEST_API_KEY, or put the key in a file and pass --api-key-file FILE"
    )
    return parser


def _source(flag: str, argv: Sequence[str], env: Mapping[str, str]) -> str:
    """Where the user set ``flag``: on the command line, or through its variable."""
    given = any(word in (flag, "--no-" + flag[2:]) or word.startswith(flag + "=") for word in argv)
    name = _env_name(flag)
    return name if name in env and not given else flag


def _read_key(args: argparse.Namespace, env: Mapping[str, str], argv: Sequence[str]) -> Secret:
    path = args.api_key_file or env.get("SMALLEST_API_KEY_FILE")
    if path:
        where = "SMALLEST_API_KEY_FILE"
        if args.api_key_file:
            where = _source("--api-key-file", argv, env)
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as err:
            reason = err.strerror or "unreadable"
            raise ConfigError(f"{where}: cannot read the API key file {path}: {reason}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{where}: the API key file {path} is not text") from None
        if not key:
            raise ConfigError(f"{where}: the API key file {path} is empty")
        return Secret(key)
    return Secret(env.get("SMALLEST_API_KEY", "").strip())


def load_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Parse and validate; raise ConfigError (or exit for --help) with a readable message."""
    env = os.environ if env is None else env
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(env).parse_args(argv)

    def source(name: str) -> str:
        return _source("--" + name.replace("_", "-"), argv, env)

    url = args.lightning_url or DEFAULT_URL
    if not url.startswith(("ws://", "wss://")):
        raise ConfigError(
            f"{source('lightning_url')} must start with ws:// or wss://, not {redact_url(url)!r}"
        )
    if args.dialect not in DIALECT_CHOICES:
        raise ConfigError(
            f"{source('dialect')} must be one of {', '.join(DIALECT_CHOICES)}, not {args.dialect!r}"
        )
    languages = languages_for(detect_dialect(url, Dialect.choice(args.dialect)))
    language = str(args.language).strip().lower()
    if language not in languages:
        raise ConfigError(
            f"{source('language')} {language!r} is not offered by the service; choose one of: "
            + ", ".join(languages)
        )
    for name in ("pre_roll_ms", "hangover_ms", "finalize_after_ms", "vad_lag_ms", "drain_timeout"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            raise ConfigError(f"{source(name)} cannot be negative")
    positive = (
        "max_utterance",
        "connect_timeout",
        "send_timeout",
        "stall_timeout",
        "final_timeout",
        "no_speech_timeout",
        "max_command",
        "response_timeout",
        "max_connections",
        "idle_timeout",
    )
    for name in positive:
        if getattr(args, name) <= 0:
            raise ConfigError(f"{source(name)} must be positive")
    if args.vad not in VAD_CHOICES:
        raise ConfigError(f"--vad must be one of {', '.join(VAD_CHOICES)}, not {args.vad!r}")
    if args.fallback not in ("none", "local"):
        raise ConfigError(f"--fallback must be 'none' or 'local', not {args.fallback!r}")
    if args.retries < 0:
        raise ConfigError(f"{source('retries')} cannot be negative")
    if args.max_requests_per_client <= 0:
        raise ConfigError(f"{source('max_requests_per_client')} must be positive")
    if args.daily_audio_limit is not None and args.daily_audio_limit < 0:
        raise ConfigError(f"{source('daily_audio_limit')} cannot be negative")
    if args.price_per_minute < 0:
        raise ConfigError(f"{source('price_per_minute')} cannot be negative")
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        raise ConfigError(f"{source('metrics_port')} must be within 0..65535")
    try:
        keywords = tuple(parse_keywords(args.keywords))
    except ConfigError as err:
        raise ConfigError(f"{source('keywords')}: {err}") from None
    return Settings(
        uri=args.uri,
        service_url=url,
        url_fixed=bool(args.lightning_url),
        dialect=args.dialect,
        language=language,
        api_key=_read_key(args, env, argv),
        vad=args.vad,
        pre_roll_ms=args.pre_roll_ms,
        hangover_ms=args.hangover_ms,
        max_utterance_s=args.max_utterance,
        early_finalize=args.early_finalize,
        finalize_after_ms=args.finalize_after_ms,
        vad_lag_ms=args.vad_lag_ms,
        re_recognize=args.re_recognize,
        endpointing=args.endpointing,
        no_speech_timeout_s=args.no_speech_timeout,
        max_command_s=args.max_command,
        streaming=args.streaming,
        connect_timeout_s=args.connect_timeout,
        send_timeout_s=args.send_timeout,
        stall_timeout_s=args.stall_timeout,
        final_timeout_s=args.final_timeout,
        response_timeout_s=args.response_timeout,
        retries=args.retries,
        fallback=args.fallback,
        check_key=args.check_key,
        max_connections=args.max_connections,
        idle_timeout_s=args.idle_timeout,
        drain_timeout_s=args.drain_timeout,
        keywords=keywords,
        zeroconf=args.zeroconf,
        debug=args.debug,
        log_format=args.log_format,
        allow=parse_networks(_split_list(args.allow)),
        max_requests_per_client=args.max_requests_per_client,
        daily_audio_limit_min=args.daily_audio_limit,
        price_per_min=args.price_per_minute,
        data_dir=args.data_dir or None,
        metrics_port=args.metrics_port,
    )
