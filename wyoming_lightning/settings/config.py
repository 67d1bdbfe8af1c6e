"""The server's settings, each declared once, and their loading from flags, variables and files.

Each field of :class:`Settings` is one setting, declared in one place with
:func:`~wyoming_lightning.settings.declare.setting`: its type (the annotation), its default, its
help text and, where it needs one, a check. From that declaration come its flag, its environment
variable, the parser, the reading of the variable, the error that names where a bad value was
set, and the README's configuration table (``scripts/config_table.py``).

Every flag has an environment variable (``--foo-bar`` is ``LIGHTNING_FOO_BAR``; the service URL
is ``LIGHTNING_URL``) so that Docker and the Home Assistant add-on can set everything without a
command line. The API key is the exception: it never appears as a flag (it would show in
``ps``), only as ``SMALLEST_API_KEY``, ``SMALLEST_API_KEY_FILE`` or ``--api-key-file``.

Adding a setting is one edit: a field here, e.g.::

    session_idle_timeout_s: float = setting(
        60.0, "seconds an unused service session is kept warm", check=positive
    )

gives ``--session-idle-timeout`` (a trailing ``_s`` is the unit, not part of the flag),
``LIGHTNING_SESSION_IDLE_TIMEOUT``, a float parser, the check and a README row (run
``python scripts/config_table.py --write``). A ``bool`` field is a ``--x/--no-x`` switch; give
``flag=``/``env=`` when the derived names do not fit, ``choices=`` for a closed set, ``parse=``
for a text type of its own, ``convert=`` when the field holds something other than what the user
types. Every field is a declared setting: a fact derived from settings is a property.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wyoming_lightning.core.protocol import (
    DEFAULT_URL,
    DIALECT_CHOICES,
    Dialect,
    Keyword,
    detect_dialect,
    languages_for,
)
from wyoming_lightning.settings.cli import Parser, bind_host, redact_url, uri_type
from wyoming_lightning.settings.declare import (
    ConfigError,
    Kind,
    Secret,
    add_arguments,
    declarations,
    resolve,
    secret,
    setting,
    source,
    summary,
)
from wyoming_lightning.settings.networks import IpNetwork, parse_network

__all__ = [
    "SETTINGS",
    "ConfigError",
    "Secret",
    "Settings",
    "build_parser",
    "load_settings",
    "settings_summary",
]

ENV_PREFIX = "LIGHTNING_"
VAD_CHOICES = ("silero", "webrtc", "off")
DEFAULT_VAD = "silero"
VAD_LAG_MS = {"silero": 48, "webrtc": 16, "off": 0}
"""How late each VAD's last "speech" frame ends after the speaker stopped (median on the
espeak commands, ``python -m benchmarks pause-budget``): the default of ``--vad-lag-ms``."""
#: Pulse streaming, US$ per minute of audio sent (billed per second). The vendor states two
#: prices: $0.006 in its changelog of 2026-05-28 and "~$0.008/min" realtime on the Pulse model
#: card, changed 2026-06-19. The model card wins: it is the later page, it is the product page
#: a buyer reads (the changelog records a moment), and for a budget an estimate that errs high
#: is the safe one.
DEFAULT_PRICE_PER_MIN = 0.008
PRICE_SOURCE = "Pulse model card, 2026-06-19"

REGION_CHOICES = ("default", "auto")

# ------------------------------------------------------------------------------- checks


def non_negative(value: float) -> str | None:
    if math.isnan(value):  # NaN compares false with everything: it would pass "< 0"
        return "must be a number"
    return "cannot be negative" if value < 0 else None


def finite_non_negative(value: float) -> str | None:
    return "must be a number >= 0" if not 0 <= value < math.inf else None


def positive(value: float) -> str | None:
    if math.isnan(value):
        return "must be a number"
    return "must be positive" if value <= 0 else None


_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.?)*")


def port_number(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be within 0..65535"


def listen_host(host: str | None) -> str | None:
    """An address to listen on: an IP address (``0.0.0.0``, ``::``, ``127.0.0.1``) or a name."""
    if host is None or _HOST_NAME.fullmatch(host):
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"must be an address such as 127.0.0.1, 0.0.0.0 or ::, not {host[:64]!r}"
    return None


def websocket_url(url: str) -> str | None:
    if url.startswith(("ws://", "wss://")):
        return None
    return f"must start with ws:// or wss://, not {redact_url(url)!r}"


def http_url(url: str) -> str | None:
    if url.startswith(("http://", "https://")):
        return None
    return f"must start with http:// or https://, not {redact_url(url)!r}"


def region_urls(value: str | None) -> str | None:
    """Two service URLs, the default host's then the US host's."""
    if value is None:
        return None
    urls = [u.strip() for u in value.split(",")]
    if len(urls) != 2:
        return "give two URLs, the default host's and the US host's, separated by a comma"
    return next((e for e in (websocket_url(u) for u in urls) if e), None)


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


# ------------------------------------------------------------------------------- conversions


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


def _keywords(text: str, where: str) -> tuple[Keyword, ...]:
    try:
        return tuple(parse_keywords(text))
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _keywords_text(keywords: tuple[Keyword, ...]) -> str:
    return ",".join(k.text if k.weight is None else f"{k.text}:{k.weight:g}" for k in keywords)


def _networks(given: str | list[str], where: str) -> tuple[IpNetwork, ...]:
    """``--allow`` values (repeated, or one comma list) into networks, parsed here once (the
    guard takes them as they are); a bare address is one host."""
    parts = given if isinstance(given, list) else [given]
    out: list[IpNetwork] = []
    for item in (i.strip() for part in parts for i in part.split(",")):
        if not item:
            continue
        try:
            out.append(parse_network(item))
        except ValueError:
            raise ConfigError(
                f"{where} {item!r} is not a network: give e.g. 192.168.1.0/24, 10.0.0.5 or fd00::/8"
            ) from None
    return tuple(out)


def _service_url(given: str | None, where: str) -> str:
    return given or DEFAULT_URL


def _language(given: str, where: str) -> str:
    return given.strip().lower()


def _optional_text(given: str | None, where: str) -> str | None:
    return given or None


# ------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know, validated once at start-up."""

    uri: str = setting(
        "tcp://0.0.0.0:10300",
        "where to listen: tcp://HOST:PORT, unix://PATH or stdio://",
        parse=uri_type(("tcp", "unix", "stdio"), server=True),
    )
    service_url: str = setting(
        None,
        "service URL; today's Pulse service is .../waves/v1/stt/live (model=pulse is added "
        "when missing), the seed's Lightning service .../api/v1/lightning/get_text "
        f"(default {DEFAULT_URL})",
        flag="--lightning-url",
        env="LIGHTNING_URL",
        convert=_service_url,
        check=websocket_url,
        show=redact_url,
    )
    dialect: str = setting(
        "auto",
        "protocol to speak: auto (from the URL's path; Pulse when it says nothing), "
        "pulse or lightning",
        choices=DIALECT_CHOICES,
    )
    language: str = setting("en", "language when the client names none", convert=_language)
    api_key: Secret = secret(  # noqa: RUF009 - a field(default_factory=...), not a shared value
        "the Smallest.ai API key", env="SMALLEST_API_KEY", file_flag="--api-key-file"
    )
    region: str = setting(
        "default",
        "which Smallest.ai host: default (the URL as given; languages one region alone serves "
        "go to its host) or auto (the nearer of api.smallest.ai, Mumbai, and "
        "api.us.smallest.ai, Oregon, by measured round trip, within those language rules)",
        choices=REGION_CHOICES,
    )
    region_urls: str | None = setting(
        None,
        "for --region auto: the service URLs on the default and on the US host, "
        "comma-separated (default: the --lightning-url on each vendor host)",
        convert=_optional_text,
        check=region_urls,
        show=lambda v: "" if v is None else ",".join(redact_url(u) for u in v.split(",")),
    )
    vad: str = setting(DEFAULT_VAD, "voice-activity detector that gates audio", choices=VAD_CHOICES)
    pre_roll_ms: int = setting(300, "audio kept before speech starts", check=non_negative)
    hangover_ms: int = setting(500, "audio kept after speech stops", check=non_negative)
    max_utterance_s: float = setting(30.0, "longest utterance in seconds", check=positive)
    early_finalize: bool = setting(True, "settle each utterance when the speaker pauses")
    finalize_after_ms: int = setting(
        550,
        "silence after which an utterance is settled (0: when the gate closes)",
        check=non_negative,
    )
    """Chosen on real speech (``python -m benchmarks pause``: every clip under 15 s at four
    placements, since Whisper's text for one placement moves by words): each split of a command
    at a natural pause costs words, WER points above straight 200 ms: +2.8, 300: +1.0, 400:
    +1.0, 450: +0.7, 500: +0.6, 550: +0.2, 600: +0.1. 550 ms is the shortest within the half
    point the wait may cost (just before the gate's 500 ms hangover closes it)."""
    vad_lag_ms: int | None = setting(
        None,
        "how late the VAD notices speech has ended, so --finalize-after-ms counts from the "
        "speech (default: the VAD's own, "
        + ", ".join(f"{k} {v}" for k, v in VAD_LAG_MS.items() if v)
        + ")",
        check=non_negative,
    )
    vad_skip_quiet_db: float = setting(
        1.5,
        "with --vad silero: while no speech is near, frames less than this many dB above the "
        "background are judged silence without running the model (0: run it on every frame)",
        check=finite_non_negative,
    )
    """The model is most of silero's cost (about 3.5 ms of CPU per audio second), and a third of
    the ``cost`` table's frames are the quiet around and within a command (``python -m
    benchmarks.cost_skip``, ``cost_ab``; fidelity: ``python -m benchmarks noise --set
    skip_quiet_db=None``). webrtc's engine follows
    the background itself on every frame, so it is never skipped."""
    pause_tail_ms: int = setting(
        300,
        "how much of a pause goes to the service before the rest is held back until speech "
        "resumes (counted as --finalize-after-ms is)",
        check=non_negative,
    )
    """The service needs a tail behind the last word, not the whole pause: the pause that ends a
    command is then billed only this far. Measured (``python -m benchmarks accuracy``): at
    F = 550 sending the whole pause put 6 of 24 requests over 1.3 x speech + 0.5 s (by up to
    0.13 s); a 400 ms tail brings the worst to the limit, 300 ms below it. The WER of the pooled
    real-speech set moves by less than the noise of one placement between 300 ms, 400 ms and
    the whole pause (+0.42, +0.63 and +0.16 points on commands at F = 550)."""
    dictation_after_s: float = setting(
        8.0,
        "after this many seconds of audio sent in one request, pauses no longer split it "
        "(dictation; 0: they always do)",
        check=non_negative,
    )
    """Measured on real speech (``python -m benchmarks.gate_diff --shifts 4``): past a few
    seconds a speaker is dictating, each split of a 15-30 s recording at its pauses is read
    without its context, and only the last pause could have saved any wait."""
    re_recognize: bool = setting(
        False,
        "when speech resumes after a pause, send the whole command again (replaces the split)",
    )
    rejoin: bool = setting(
        True,
        "when speech resumes after a pause split the command, send it whole again if the "
        "request's audio stays within 1.3 x its speech + 0.5 s (replaces the split)",
    )
    """Measured on real speech in steady noise (``python -m benchmarks noise``): a command split
    at a pause is read worse in fragments than whole, and the service itself (800 ms to settle
    by itself, never in noise) reads it whole; the early finalize, and with it the wait after
    audio-stop, stays as it is."""
    endpointing: bool = setting(False, "end the command on silence without audio-stop")
    no_speech_timeout_s: float = setting(
        8.0,
        "with --endpointing: seconds of audio without speech after which the request ends empty",
        check=positive,
    )
    max_command_s: float = setting(
        15.0,
        "with --endpointing: longest command in seconds (Home Assistant's own cap is 15)",
        check=positive,
    )
    turn_intents: bool = setting(
        True,
        "with --endpointing: end a command by what was said, matched against Home Assistant's "
        "sentence templates (needs the 'intents' extra: hassil, home-assistant-intents)",
    )
    turn_complete_ms: int = setting(
        250,
        "with --turn-intents: pause after a whole command (one a template matches) that ends it",
        check=non_negative,
    )
    turn_unfinished_ms: int = setting(
        1500,
        "with --turn-intents: silence that ends a command heard only in part ('turn on the'); "
        "the backstop",
        check=non_negative,
    )
    """Longer than any pause of the pause set (200-900 ms after "the", "for", a hesitation:
    ``python -m benchmarks.pause_set``), shorter than Home Assistant's own no-speech waits."""
    turn_finalize_ms: int = setting(
        200,
        "with --turn-intents: pause after which an utterance is settled early, unless its words "
        "so far are only the start of a command (0: at --finalize-after-ms)",
        check=non_negative,
    )
    """The final of that finalize brings the command's words (interims trail the speech), so
    the turn can end C ms after this pause instead of after ``--finalize-after-ms``."""
    smart_turn: bool = setting(
        False,
        "with --turn-intents: ask the smart-turn acoustic model, at a pause whose words no "
        "template decides, whether the speaker is done (needs the 'smart-turn' extra)",
    )
    streaming: bool = setting(True, "send transcript-start/chunk/stop events")
    connect_timeout_s: float = setting(5.0, "seconds for the handshake", check=positive)
    send_timeout_s: float = setting(5.0, "seconds for one send", check=positive)
    stall_timeout_s: float = setting(
        2.0,
        "seconds a service session that owes a final may show no progress at all (no message, "
        "no pong, no audio taken) before it is replaced",
        check=positive,
    )
    session_idle_timeout_s: float = setting(
        30.0,
        "seconds a Pulse socket stays open (with keepalives) after a request, for the next "
        "request with the same options (0: a new socket per request)",
        check=non_negative,
    )
    final_timeout_s: float = setting(
        10.0,
        "seconds to wait after audio-stop (or the last final) for a live service, plus one per "
        "second of audio still without a final",
        check=positive,
    )
    response_timeout_s: float = setting(
        30.0, "seconds from audio-stop to the answer, at most", check=positive
    )
    retries: int = setting(3, "reconnections per request", check=non_negative)
    fallback: str = setting("none", "when the cloud fails", choices=("none", "local"))
    check_key: bool = setting(False, "test the API key at start-up")
    max_connections: int = setting(100, "clients served at once", check=positive)
    idle_timeout_s: float = setting(30.0, "seconds a client may stay silent", check=positive)
    header_timeout_s: float = setting(
        5.0,
        "seconds a client has to send its first event, and to finish each event it begins "
        "(a dribbling or silent connection is closed)",
        check=positive,
    )
    read_batch_ms: int = setting(
        100,
        "read the audio of a client that stops only in pauses every this many ms, several "
        "chunks at once, instead of each chunk as it comes, where no rule can act on it "
        "meanwhile (0: each as it comes; never with the turn rule)",
        check=non_negative,
    )
    """A wake-up of the event loop per 10 ms chunk was most of a stream's CPU (issue 27,
    ``docs/profile.md``). Read late only where no rule that settles an utterance or ends the
    turn can act on the audio meanwhile (``Segmenter.undecided_ms``), so no answer comes later;
    only clients seen to send ``audio-stop`` in pauses, and no sooner into one than they have
    before (``ops/stop_habits.py``), as Home Assistant does, else their stop would wait in the
    socket; never under the turn rule (``--endpointing`` with ``--turn-intents``), which reads
    the audio clock when words arrive."""
    event_loop: str = setting(
        "auto",
        "the event loop (auto: uvloop when it is installed, else asyncio's)",
        choices=("auto", "uvloop", "asyncio"),
    )
    """uvloop halves what each socket wake-up costs (``python -m benchmarks.cost_ab``, in
    ``docs/profile.md``); ``asyncio`` is the way back should it ever misbehave somewhere."""
    max_request_s: float = setting(
        120.0,
        "longest request in seconds of audio, with or without --endpointing; then it is "
        "answered with what was recognised",
        check=positive,
    )
    drain_timeout_s: float = setting(
        7.0,
        "seconds running requests may take to finish on SIGTERM before they get an error "
        "(keep it under the stop timeout, 10 s in Docker and Home Assistant)",
        check=non_negative,
    )
    keywords: tuple[Keyword, ...] = setting(
        "",
        "words to boost: 'word,phrase:weight' (weight 1 to 3; none: the service's default 1)",
        convert=_keywords,
        show=_keywords_text,
    )
    zeroconf: str | None = setting(
        None,
        "advertise on the network with this name (default: wyoming-lightning)",
        const="wyoming-lightning",
        metavar="NAME",
    )
    # Cost and access (issue 12): see access.py, quota.py, usage_store.py, metrics.py.
    allow: tuple[IpNetwork, ...] = setting(
        "",
        "serve only clients from this network (CIDR; repeat, or comma-separate in the "
        "variable); default: everyone",
        convert=_networks,
        repeat=True,
        metavar="CIDR",
    )
    max_requests_per_client: int = setting(
        10, "requests one client address may run at once", check=positive
    )
    daily_audio_limit_min: float | None = setting(
        None,
        "minutes of audio sent to the service per calendar day (local time); then the "
        "fallback, or error 'quota' (default: no limit)",
        flag="--daily-audio-limit",
        metavar="MINUTES",
        check=non_negative,
    )
    price_per_min: float = setting(
        DEFAULT_PRICE_PER_MIN,
        "US$ per minute of audio sent, for the usage estimate (default: the realtime price of "
        f"the {PRICE_SOURCE})",
        flag="--price-per-minute",
        check=non_negative,
    )
    data_dir: str | None = setting(
        None,
        "directory for the usage file usage.sqlite3 (default: usage kept in memory)",
        convert=_optional_text,
    )
    metrics_port: int | None = setting(
        None,
        "serve Prometheus metrics on this port (0: any free port; default: off)",
        check=port_number,
    )
    metrics_host: str | None = setting(
        None,
        "address the metrics endpoint listens on (default: the --uri host; 127.0.0.1 for "
        "unix:// and stdio://)",
        convert=_optional_text,
        check=listen_host,
        metavar="HOST",
    )
    # The page (issue 25): web.py; the Home Assistant connection: hass/.
    web_port: int | None = setting(
        None,
        "serve the status page (usage, limits, recent requests, a microphone test) on this "
        "port, bound like the Wyoming port (loopback for unix://) (0: any free port; "
        "default: off)",
        check=port_number,
    )
    web_allow: tuple[IpNetwork, ...] = setting(
        "",
        "also let this network open the page (CIDR; repeat), on top of --allow: the add-on "
        "lets in the Supervisor's ingress proxy, 172.30.32.2",
        convert=_networks,
        repeat=True,
        metavar="CIDR",
    )
    web_show_text: bool = setting(
        False, "show what each recent request said on the page (default: hidden)"
    )
    hass_url: str | None = setting(
        None,
        "Home Assistant's URL, e.g. http://homeassistant.local:8123 (the add-on: "
        "http://supervisor/core); publishes today's usage as sensors and sends the home's "
        "names as keywords (default: off)",
        convert=_optional_text,
        check=http_url,
    )
    hass_token_file: str | None = setting(
        None,
        "file holding a long-lived access token for --hass-url (or set HASS_TOKEN; never "
        "on the command line)",
        convert=_optional_text,
    )
    hass_names: bool = setting(
        True,
        "with --hass-url: send the names of the entities exposed to Assist, their aliases, "
        "areas and floors to the service as keywords, so they are recognised",
    )
    hass_sensors: bool = setting(True, "with --hass-url: publish today's usage as sensors")
    debug: bool = setting(False, "log everything")
    log_format: str = setting(
        "%(asctime)s %(levelname)s %(name)s: %(message)s",
        "Python logging format",
        parse=log_format,
    )

    @property
    def local_only(self) -> bool:
        """No key: the server runs on the offline recognizer alone."""
        return not self.api_key

    @property
    def metrics_listen_host(self) -> str:
        """Where the metrics endpoint listens: ``--metrics-host``, else where Wyoming does
        (usage and cost are no more public than the server), loopback for a local socket."""
        return self.metrics_host or bind_host(self.uri)

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


SETTINGS = declarations(Settings, ENV_PREFIX)
"""Every setting of :class:`Settings`, resolved: what the parser, the loader and the README's
table are made from."""
_BY_NAME = {spec.name: spec for spec in SETTINGS}


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line; each default comes from the environment when set there."""
    (key,) = (spec for spec in SETTINGS if spec.kind is Kind.SECRET)
    parser = Parser(
        prog="wyoming-lightning",
        description="Wyoming speech-to-text server for Smallest.ai Lightning / Pulse.",
        epilog="Every option can also be set by environment variable: --foo-bar is "
        f"{ENV_PREFIX}FOO_BAR (the service URL: {_BY_NAME['service_url'].env}). The API key "
        f"comes from {key.env}, {key.file_env} or {key.file_flag}. "
        "The usage of recent days: wyoming-lightning usage --data-dir DIR [--days N].",
    )
    parser.hints.update(add_arguments(parser, SETTINGS, env))
    parser.add_version()
    return parser


def settings_summary(settings: Settings) -> str:
    """What differs from the defaults, for the log: the key only as set or unset, the URL
    without credentials."""
    return summary(settings, SETTINGS)


def load_settings(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Parse and validate; raise ConfigError (or exit for --help) with a readable message."""
    env = os.environ if env is None else env
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(env).parse_args(argv)
    values: dict[str, Any] = {
        spec.name: value for spec, value in resolve(SETTINGS, args, argv, env)
    }
    settings = Settings(**values)
    # The one rule between settings: the language must be one the chosen service offers.
    languages = languages_for(settings.service_dialect)
    if settings.language not in languages:
        spec = _BY_NAME["language"]
        where = source(spec.flag, spec.env, argv, env)
        raise ConfigError(
            f"{where} {settings.language!r} is not offered by the service; choose one of: "
            + ", ".join(languages)
        )
    return settings
