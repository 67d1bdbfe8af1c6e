"""What every console script shares, so that a user's mistake gets one line, never a traceback.

* :class:`Parser`: no abbreviated options (``--api-key`` must not silently become
  ``--api-key-file``), defaults shown in ``--help``, ``--version``, and errors in one line that
  never repeat an unknown argument's value (it may be a key typed in the wrong place).
* :func:`parse_uri`: ``tcp://HOST:PORT``, ``unix://PATH`` and ``stdio://`` checked when parsed.
* :func:`describe_failure` / :func:`cannot_reach`: a network failure in words, with the host,
  instead of a Python class name.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from wyoming_lightning import __version__

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` where there is a default worth showing (not None, not an empty
    string, not where the help text already says it); on/off for ``--x/--no-x`` switches."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "default" in text or not action.option_strings:
            return text
        if isinstance(action, argparse.BooleanOptionalAction):
            return f"{text} (default: {'on' if default else 'off'})"
        empty = isinstance(default, str | list) and not default
        if default is None or default is False or empty or default is argparse.SUPPRESS:
            return text  # unset, or a switch that is off: nothing worth saying
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` with the project's conventions (see the module)."""

    usage_exit = EXIT_USAGE
    """Exit status for a usage error (a health check must exit 1: Docker reserves 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self.hints: dict[str, str] = {}
        """Unknown option -> what to say instead of "unrecognized"."""

    def add_version(self) -> None:
        # The bare number, as the server always printed it: build scripts compare it.
        self.add_argument("--version", action="version", version=__version__)

    def error(self, message: str) -> NoReturn:
        self.exit(self.usage_exit, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(unknown_arguments(extras, self.hints))
        return parsed


def unknown_arguments(extras: Sequence[str], hints: dict[str, str]) -> str:
    """Name the unknown options, never their values: ``--api-key sk-...`` must not print the key."""
    options = [word.split("=", 1)[0] for word in extras if word.startswith("-")]
    for option in options:
        if option in hints:
            return hints[option]
    values = len(extras) - len(options) + sum("=" in w for w in extras if w.startswith("-"))
    shown = " ".join(options)
    if not options:
        return f"unexpected argument{'s' if values > 1 else ''} (not shown: it may be a secret)"
    if values:
        return f"unrecognized option(s) {shown} (their values are not shown)"
    return f"unrecognized option(s) {shown}"


def run_main(prog: str, main: Callable[[], int]) -> NoReturn:
    """``sys.exit(main())``, with Ctrl-C reported in one line instead of a traceback."""
    try:
        code = main()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.exit(code)


# ------------------------------------------------------------------------------- URIs


@dataclass(frozen=True)
class Endpoint:
    """A parsed Wyoming URI."""

    scheme: str
    host: str = ""
    port: int | None = None
    path: str = ""


_SHAPES = {"tcp": "tcp://HOST:PORT", "unix": "unix://PATH", "stdio": "stdio://"}
DEFAULT_PORT = 10300
"""Wyoming's customary port for speech-to-text: a server's, when its URI names none."""


def parse_uri(
    text: str, schemes: Collection[str] = ("tcp", "unix"), *, server: bool = False
) -> Endpoint:
    """Check a Wyoming URI; raise ValueError with a one-line reason.

    A server may leave out the host (all interfaces: ``host`` is empty) and the port
    (:data:`DEFAULT_PORT`); a client may not. Every reader of a Wyoming URI comes here: the
    server, the client, the health check.
    """
    allowed = [_SHAPES[s] for s in _SHAPES if s in schemes]
    shapes = " or ".join(allowed) if len(allowed) < 3 else ", ".join(allowed[:-1]) + " or stdio://"
    scheme, sep, _rest = text.partition("://")
    if not sep or not scheme:
        raise ValueError(f"{text!r} is not a URI; use {shapes}")
    scheme = scheme.lower()
    if scheme not in schemes:
        raise ValueError(f"{scheme}:// is not supported here; use {shapes}")
    parts = urlsplit(text)
    if scheme == "stdio":
        return Endpoint("stdio")
    if scheme == "unix":
        path = parts.netloc + parts.path
        if not path:
            raise ValueError(f"{text!r} names no socket file; use unix://PATH")
        return Endpoint("unix", path=path)
    raw_port = parts.netloc.rpartition("]")[2].rpartition(":")[2] if ":" in parts.netloc else ""
    try:
        port = parts.port
    except ValueError:
        if raw_port.isdigit():
            raise ValueError(f"port {raw_port} in {text!r} is out of range (0-65535)") from None
        raise ValueError(f"port {raw_port!r} in {text!r} is not a number") from None
    host = parts.hostname or ""
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{text!r} has more than a host and a port; use tcp://HOST:PORT")
    if not server and (not host or port is None):
        raise ValueError(f"{text!r} needs a host and a port: tcp://HOST:PORT")
    return Endpoint("tcp", host=host, port=DEFAULT_PORT if port is None else port)


def bind_host(uri: str) -> str:
    """Where an extra port of this server listens (the page, the metrics endpoint): the
    Wyoming listen host, loopback when the server listens on a Unix socket or stdio, so that
    neither ever exposes more than the Wyoming port already does."""
    where = parse_uri(uri, ("tcp", "unix", "stdio"), server=True)
    if where.scheme == "tcp":
        return where.host or "0.0.0.0"
    return "127.0.0.1"


def uri_type(
    schemes: Collection[str] = ("tcp", "unix"), *, server: bool = False
) -> Callable[[str], str]:
    """An argparse ``type=`` that checks a URI at parse time and keeps it as given."""

    def check(text: str) -> str:
        try:
            parse_uri(text, schemes, server=server)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return text

    check.__name__ = "URI"
    return check


def port_type(text: str) -> int:
    """An argparse ``type=`` for a TCP port (0 picks a free one)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (0-65535)")
    return port


# ------------------------------------------------------------------------------- failures


def describe_failure(err: BaseException) -> str:
    """Why a connection failed, in a few lowercase words (no class names, no request text)."""
    if isinstance(err, socket.gaierror):
        if err.errno == socket.EAI_AGAIN:
            return "name not resolved (temporary failure: is the network up?)"
        return "name not resolved"
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted ({err.verify_message})"
    if isinstance(err, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, ConnectionResetError):
        return "connection reset"
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, EOFError):
        return "the connection closed during the handshake"
    if isinstance(err, OSError) and (err.errno or err.strerror):
        # The system's own words for the errno: asyncio rewraps bind errors in longer text.
        text = os.strerror(err.errno) if isinstance(err.errno, int) and err.errno > 0 else ""
        text = text or str(err.strerror)
        return text[0].lower() + text[1:]
    return "connection failed"


def host_of(url: str) -> str:
    """``host`` or ``host:port`` of a URL, without any user name or password."""
    parts = urlsplit(url)
    host = parts.hostname or parts.netloc.rpartition("@")[2] or url
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port is not None else host


def cannot_reach(url: str, err: BaseException) -> str:
    return f"cannot reach {host_of(url)}: {describe_failure(err)}"


_SECRET_QUERY_WORDS = ("key", "token", "secret", "password", "auth")


def redact_url(url: str) -> str:
    """The URL whole, except a password and any query value that looks like a credential."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}:***@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [
                    (k, "***" if any(w in k.lower() for w in _SECRET_QUERY_WORDS) else v)
                    for k, v in pairs
                ],
                safe="*",
            )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "(a URL that cannot be parsed)"
