"""What every benchmark table shares: processes, /proc readings, Home-Assistant-style clients.

The bridge and the emulator run as subprocesses (``python -m wyoming_lightning``,
``python -m benchmarks.emulator``) so that the CPU and memory read from /proc belong to the
server alone; the clients that load it run in the benchmark process, on its event loop.

Clients send as Home Assistant does: a new TCP connection per request, ``transcribe``,
``audio-start``, 10 ms ``audio-chunk`` events of 320 bytes, ``audio-stop``, then wait for
``transcript``. One :class:`Pacer` writes the chunks of every stream, each on its own
absolute schedule (``loop.time()``), so pacing error never accumulates. It wakes every
millisecond: streams keep their own phase within the 10 ms chunk period, as independent
satellites do (one wake-up per 10 ms for all streams would send every stream's chunk in one
burst and measure the bursts), and a hundred streams cost one timer instead of a hundred.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wyoming.event import Event

from tests.kit.bridge import clean_env
from tests.kit.human_speech import HA_TRAIL_S
from tests.kit.net import free_port as free_port
from tests.kit.paths import ROOT
from tests.kit.stats import median as median
from tests.kit.stats import percentile as percentile
from wyoming_lightning.core.pipeline_format import (
    BYTES_PER_SECOND,
    CHANNELS,
    SAMPLE_RATE,
    SAMPLE_WIDTH,
)
from wyoming_lightning.wyoming.wire import encode_event

API_KEY = "bench-key"
CHUNK_S = 0.010
CHUNK_BYTES = 320
LIGHTNING_PATH = "/api/v1/lightning/get_text"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HA_STOP_AFTER_S = HA_TRAIL_S
"""Home Assistant sends audio-stop this long after the speech ends (its own end-of-speech wait)."""


def floor_ms(finalize_after_ms: float, rtt_ms: float, settle_ms: float) -> float:
    """The soonest any design can answer after HA's audio-stop: it sends its last audio
    ``finalize_after_ms`` into the pause, the answer takes a round trip and the cloud's settle
    time, and HA waits :data:`HA_STOP_AFTER_S` of that pause before it sends audio-stop."""
    return max(0.0, finalize_after_ms + rtt_ms + settle_ms - HA_STOP_AFTER_S * 1000)


# ----------------------------------------------------------------------------- statistics

# percentile and median: tests/kit/stats.py, re-exported here for the tables.


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


# ----------------------------------------------------------------------------- tables


MAX_WIDTH = 120
"""Printed tables wrap their columns into stacked parts narrower than this (the JSON and
``--json`` keep every row whole)."""
_STARTED = time.monotonic()


def progress(message: str) -> None:
    """One line to stderr while a long table runs (a clip, a condition), so a run that takes
    minutes is never silent; stdout keeps only the tables."""
    print(f"  [{time.monotonic() - _STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


@dataclass
class Table:
    """A printed table and its JSON twin: headers carry the units."""

    key: str
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, cells: Sequence[object], **record: Any) -> None:
        self.rows.append([str(c) for c in cells])
        self.records.append(record or dict(zip(self.headers, map(str, cells), strict=True)))

    def render(self, max_width: int = MAX_WIDTH) -> str:
        """The table as text no wider than ``max_width`` where it can be: columns that do not
        fit go to a further part below, each part repeating the first (naming) column."""
        widths = [
            max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h)
            for i, h in enumerate(self.headers)
        ]
        parts: list[list[int]] = [[]]
        used = widths[0]
        for i in range(1, len(widths)):
            if parts[-1] and used + 2 + widths[i] > max_width:
                parts.append([])
                used = widths[0]
            parts[-1].append(i)
            used += 2 + widths[i]

        def line(cells: Sequence[str], columns: list[int]) -> str:
            first = f"{cells[0]:<{widths[0]}}"
            rest = (f"{cells[i]:>{widths[i]}}" for i in columns)
            return "  ".join([first, *rest]).rstrip()

        out = [self.title, "=" * min(len(self.title), max_width)]
        for n, columns in enumerate(parts):
            if n:
                out.append(f"  (continued: columns {columns[0] + 1}-{columns[-1] + 1})")
            out.append(line(self.headers, columns))
            out.append("  ".join("-" * widths[i] for i in [0, *columns]))
            out += [line(r, columns) for r in self.rows]
        for note in self.notes:
            out += textwrap.wrap(
                note,
                max_width,
                initial_indent="  ",
                subsequent_indent="    ",
                break_on_hyphens=False,
            ) or [""]
        return "\n".join(out)

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "headers": self.headers,
            "rows": self.rows,
            "records": self.records,
            "notes": self.notes,
        }


def machine_description() -> dict[str, str]:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


# ----------------------------------------------------------------------------- processes


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


class CpuWindow:
    """CPU used over a window by given processes, by this process and by everything else."""

    def __init__(self, *procs: Proc) -> None:
        self.procs = procs
        self.start: dict[str, float] = {}
        self.end: dict[str, float] = {}
        self.wall = 0.0

    def _snapshot(self) -> dict[str, float]:
        snap = {p.name: p.cpu_seconds() for p in self.procs}
        snap["benchmark"] = time.process_time()
        snap["machine"] = machine_busy_seconds()
        snap["wall"] = time.monotonic()
        return snap

    def mark(self, start: bool) -> None:
        if start:
            self.start = self._snapshot()
        else:
            self.end = self._snapshot()
            self.wall = self.end["wall"] - self.start["wall"]

    def seconds(self, name: str) -> float:
        return self.end[name] - self.start[name]

    def others_percent(self) -> float:
        """Busy CPU of every other process on the machine, in % of one core."""
        ours = sum(self.seconds(p.name) for p in self.procs) + self.seconds("benchmark")
        return 100 * max(0.0, self.seconds("machine") - ours) / self.wall


def py_spy(
    pid: int, seconds: float, out: str | Path, rate: int = 200, *, nonblocking: bool = True
) -> subprocess.Popen[bytes]:
    """Sample process ``pid`` with py-spy (``pip install py-spy``) for ``seconds`` into ``out``,
    as collapsed stacks (py-spy's "raw" format). ``nonblocking``: read the process without
    stopping it (cheaper for it, a little less exact)."""
    command = [shutil.which("py-spy") or "py-spy", "record", "--pid", str(pid)]
    command += ["--duration", str(int(seconds)), "--rate", str(rate), "--format", "raw"]
    command += ["-o", str(out), *(["--nonblocking"] if nonblocking else [])]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Proc:
    """A server subprocess: started, waited for, measured through /proc, stopped."""

    def __init__(
        self,
        name: str,
        args: list[str],
        port: int,
        env: dict[str, str] | None = None,
        root: Path = ROOT,
        executable: str | None = None,
    ):
        """``root``: the checkout whose code runs (another one to compare with this);
        ``executable``: another venv's Python, for a peer."""
        self.name = name
        self.port = port
        self.log_path = Path(tempfile.mkdtemp(prefix=f"bench-{name}-")) / "log.txt"
        self._log = self.log_path.open("wb")
        # The user's own LIGHTNING_* / SMALLEST_* settings would change what is measured.
        full_env = {**clean_env(None), **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(root), full_env.get("PYTHONPATH", "")) if p
        )
        self.popen = subprocess.Popen(
            [executable or sys.executable, *args],  # another venv's Python runs a peer
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=root,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise TimeoutError(f"{self.name} did not listen within {timeout:g} s:\n{self.log_tail()}")

    async def wait_for_log(self, marker: str, timeout: float = 60.0) -> None:
        """Wait until the process has logged ``marker`` (when a connection would be counted)."""
        deadline = time.monotonic() + timeout
        while marker not in self.log_text():
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not log {marker!r} within {timeout:g} s")
            await asyncio.sleep(0.05)

    def cpu_seconds(self) -> float:
        """utime + stime of the whole process (all its threads), from /proc/PID/stat."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def memory_kb(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak), in kB."""
        values: dict[str, int] = {}
        for text in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = text.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def sockets(self) -> int:
        """Open socket file descriptors (listening ones included), from /proc/PID/fd."""
        count = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{self.pid}/fd"):
                with contextlib.suppress(OSError):
                    count += os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith("socket:")
        return count

    def warnings(self) -> int:
        """Lines of its log at WARNING or ERROR level."""
        return sum(" WARNING " in t or " ERROR " in t for t in self.log_text().splitlines())

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    async def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; the exit code (negative: a signal)."""
        if self.popen.poll() is None:
            self.popen.terminate()
            deadline = time.monotonic() + timeout
            while self.popen.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if self.popen.poll() is None:
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return self.popen.returncode


def emulator_args(
    port: int,
    *,
    recognizer: str = "fast-tones",
    finalize_delay_ms: int = 0,
    log_level: str = "warning",
    latency: str = "none",
    extra: Sequence[str] = (),
) -> list[str]:
    """The emulator's command line; ``latency="cloud"`` turns its latency model on."""
    return [
        "-m",
        "benchmarks.emulator",
        "--port",
        str(port),
        "--recognizer",
        recognizer,
        "--finalize-delay-ms",
        str(finalize_delay_ms),
        "--log-level",
        log_level,
        "--latency",
        latency,
        *extra,
    ]


def bridge_args(port: int, emulator_port: int, *flags: str) -> list[str]:
    return [
        "-m",
        "wyoming_lightning",
        "--uri",
        f"tcp://127.0.0.1:{port}",
        "--lightning-url",
        f"ws://127.0.0.1:{emulator_port}{LIGHTNING_PATH}",
        "--max-connections",
        "2000",
        "--max-requests-per-client",  # every load generator is one address: 127.0.0.1
        "2000",
        *flags,
    ]


BRIDGE_ENV = {"SMALLEST_API_KEY": API_KEY}


@contextlib.asynccontextmanager
async def running(*procs: Proc) -> Any:
    """Wait for every process to listen; stop them all on the way out."""
    try:
        await asyncio.gather(*(p.wait_ready() for p in procs))
        yield procs
    finally:
        for proc in procs:
            await proc.stop()


# ----------------------------------------------------------------------------- audio


def chunk_events(pcm: bytes) -> list[bytes]:
    """Every 10 ms of ``pcm`` as an encoded ``audio-chunk`` event, as Home Assistant sends."""
    data = {"rate": SAMPLE_RATE, "width": SAMPLE_WIDTH, "channels": CHANNELS}
    return [
        encode_event(Event("audio-chunk", data, pcm[i : i + CHUNK_BYTES]))
        for i in range(0, len(pcm), CHUNK_BYTES)
    ]


AUDIO_START = encode_event(
    Event("audio-start", {"rate": SAMPLE_RATE, "width": SAMPLE_WIDTH, "channels": CHANNELS})
)
HEAD = encode_event(Event("transcribe", {"language": "en"})) + AUDIO_START
STOP = encode_event(Event("audio-stop"))

#: How a client reads, as Home Assistant's versions do: ``concurrent`` reads from the start and
#: sends all its audio; ``ha`` (Home Assistant 2026.2) sends everything, then reads;
#: ``reading`` (the newer client) reads from the start and stops sending at the first answer.
CLIENT_MODES = ("concurrent", "ha", "reading")


@dataclass
class Script:
    """One request's audio, pre-encoded; ``expected`` is the text it should come back as."""

    chunks: list[bytes]
    expected: str | None = None
    label: str = ""
    head: bytes = HEAD  # transcribe + audio-start

    @classmethod
    def of(
        cls,
        pcm: bytes,
        expected: str | None = None,
        label: str = "",
        transcribe: Event | None = None,
    ) -> Script:
        """``transcribe`` replaces the default ``transcribe`` event (language en)."""
        head = HEAD if transcribe is None else encode_event(transcribe) + AUDIO_START
        return cls(chunk_events(pcm), expected, label, head)

    @property
    def seconds(self) -> float:
        return len(self.chunks) * CHUNK_S


# ----------------------------------------------------------------------------- pacing


class Feed:
    """The audio of one request, written by the pacer on an absolute schedule."""

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        script: Script,
        start: float,
        until: asyncio.Future[None] | None = None,
    ) -> None:
        self.writer = writer
        self.script = script
        self.start = start
        self.until = until  # once done (an answer came), the rest of the audio is skipped
        self.sent = 0
        self.stop_at: float | None = None  # perf_counter() just after audio-stop was written
        self.done = asyncio.get_running_loop().create_future()

    def pump(self, now: float) -> bool:
        """Write what is due by ``now``; True once audio-stop is out."""
        chunks = self.script.chunks
        # A chunk goes out once it has been recorded (at the end of its 10 ms), as a
        # microphone delivers it: sending it at the start would flatter every wait.
        due = min(len(chunks), int((now - self.start) / CHUNK_S))
        if self.until is not None and self.until.done():
            due = self.sent = len(chunks)
            now = max(now, self.start + len(chunks) * CHUNK_S)
        if due > self.sent:
            if self.writer.is_closing():
                self._finish()
                return True
            self.writer.write(b"".join(chunks[self.sent : due]))
            self.sent = due
        if self.sent >= len(chunks) and now >= self.start + len(chunks) * CHUNK_S:
            if not self.writer.is_closing():
                self.writer.write(STOP)
            self._finish()
            return True
        return False

    def _finish(self) -> None:
        self.stop_at = time.perf_counter()
        if not self.done.done():
            self.done.set_result(None)


class Pacer:
    """One clock for every stream: wakes each ``tick_s`` and writes each stream's due chunks."""

    def __init__(self, tick_s: float = 0.001) -> None:
        self._feeds: list[Feed] = []
        self._task: asyncio.Task[None] | None = None
        self.tick_s = tick_s
        self.late_ticks = 0

    def add(self, feed: Feed) -> None:
        self._feeds.append(feed)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        origin = loop.time()
        tick = 0
        while True:
            tick += 1
            deadline = origin + tick * self.tick_s
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)
            now = loop.time()
            if now - deadline > CHUNK_S:
                self.late_ticks += 1
                tick = int((now - origin) / self.tick_s)  # skip missed ticks; feeds catch up
            if self._feeds:
                self._feeds = [f for f in self._feeds if not f.pump(now)]


# ----------------------------------------------------------------------------- Wyoming client


async def read_wyoming_event(reader: asyncio.StreamReader) -> Event | None:
    line = await reader.readline()
    if not line:
        return None
    header = json.loads(line)
    data = header.get("data") or {}
    if header.get("data_length"):
        data.update(json.loads(await reader.readexactly(header["data_length"])))
    payload = None
    if header.get("payload_length"):
        payload = await reader.readexactly(header["payload_length"])
    return Event(header["type"], data, payload)


@dataclass
class Result:
    """One request as the client saw it."""

    label: str
    expected: str | None
    text: str | None = None
    error: str | None = None
    code: str | None = None  # the error event's code
    stop_at: float | None = None
    transcript_at: float | None = None

    @property
    def wait(self) -> float | None:
        if self.stop_at is None or self.transcript_at is None:
            return None
        return self.transcript_at - self.stop_at

    @property
    def correct(self) -> bool:
        return self.error is None and (self.expected is None or self.text == self.expected)


async def ha_request(
    port: int,
    script: Script,
    pacer: Pacer | None,
    *,
    start: float | None = None,
    timeout: float = 30.0,
    client: str = "concurrent",
) -> Result:
    """One Home-Assistant-style request; ``pacer=None`` writes all audio at once; ``client``
    is one of :data:`CLIENT_MODES`."""
    result = Result(script.label, script.expected)
    reading: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(script.head)
                if client != "ha":
                    reading = asyncio.create_task(_read_transcript(reader, result))
                if pacer is None:
                    writer.write(b"".join(script.chunks))
                    writer.write(STOP)
                    result.stop_at = time.perf_counter()
                else:
                    loop = asyncio.get_running_loop()
                    until = reading if client == "reading" else None
                    feed = Feed(writer, script, loop.time() if start is None else start, until)
                    pacer.add(feed)
                    await feed.done
                    result.stop_at = feed.stop_at
                with contextlib.suppress(ConnectionError):
                    await writer.drain()  # the bridge hung up (after an error): read what it said
                if reading is None:
                    await _read_transcript(reader, result)
                else:
                    await reading
            finally:
                if reading is not None:
                    reading.cancel()
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError:
        result.error = result.error or "timeout"
    except (OSError, ValueError, asyncio.IncompleteReadError) as err:
        result.error = result.error or f"{type(err).__name__}: {err}"
    return result


async def _read_transcript(reader: asyncio.StreamReader, result: Result) -> None:
    while True:
        event = await read_wyoming_event(reader)
        if event is None:
            if result.text is None and result.error is None:
                result.error = "closed without a transcript"
            return
        if event.type == "transcript":
            result.transcript_at = time.perf_counter()
            result.text = str(event.data.get("text", ""))
            return
        if event.type == "error":
            result.error = str(event.data.get("text", "error"))
            result.code = event.data.get("code")
            return


async def steady_load(
    port: int,
    scripts: Sequence[Script],
    streams: int,
    duration: float,
    *,
    on_window: Any = None,
    warmup: float = 2.0,
) -> tuple[list[Result], Pacer]:
    """``streams`` Home-Assistant streams, each sending requests back to back in real time.

    Stream *i* starts ``i / streams`` of a request's length late, so audio-stops spread evenly.
    Requests whose audio-stop falls within ``[warmup, warmup + duration)`` are kept.
    ``on_window(start: bool)`` is called at the window's start and end (for /proc readings).
    """
    loop = asyncio.get_running_loop()
    pacer = Pacer()
    pacer.start()
    origin = loop.time() + 0.2
    window_start = origin + warmup
    window_end = window_start + duration
    mean_len = sum(s.seconds for s in scripts) / len(scripts)
    kept: list[Result] = []

    async def stream(index: int) -> None:
        start = origin + mean_len * index / streams
        n = index
        while start < window_end:
            await asyncio.sleep(max(0.0, start - loop.time() - 0.05))
            script = scripts[n % len(scripts)]
            n += 1
            result = await ha_request(port, script, pacer, start=start)
            stop_loop = start + script.seconds
            if window_start <= stop_loop < window_end:
                kept.append(result)
            start = max(stop_loop, loop.time())

    async def window() -> None:
        await asyncio.sleep(max(0.0, window_start - loop.time()))
        if on_window is not None:
            on_window(True)
        await asyncio.sleep(max(0.0, window_end - loop.time()))
        if on_window is not None:
            on_window(False)

    try:
        await asyncio.gather(window(), *(stream(i) for i in range(streams)))
    finally:
        await pacer.stop()
    return kept, pacer


def summarize_errors(results: Iterable[Result]) -> str:
    wrong = [r for r in results if not r.correct]
    if not wrong:
        return "0"
    first = wrong[0]
    return f"{len(wrong)} (e.g. {first.error or repr(first.text)})"


# ----------------------------------------------------------------------------- Lightning client


async def direct_request(
    emulator_port: int,
    pcm: bytes,
    *,
    start: float,
    frame_bytes: int = 3200,
    expected: str | None = None,
    timeout: float = 30.0,
    api_key: str = API_KEY,
) -> Result:
    """The emulator-direct baseline: the Lightning protocol spoken straight to the emulator.

    Audio goes in the bridge's own 100 ms frames, paced in real time on an absolute schedule,
    then ``{"type": "end"}``; the wait is from that frame to the message with ``is_last``.
    """
    from websockets.asyncio.client import connect

    loop = asyncio.get_running_loop()
    result = Result("direct", expected)
    url = (
        f"ws://127.0.0.1:{emulator_port}{LIGHTNING_PATH}"
        f"?language=en&encoding=linear16&sample_rate={SAMPLE_RATE}&word_timestamps=false"
    )
    try:
        async with asyncio.timeout(timeout):
            async with connect(
                url,
                additional_headers={"Authorization": f"Bearer {api_key}"},
                compression=None,
                ping_interval=None,
            ) as ws:
                finals: list[str] = []

                async def receive() -> None:
                    async for frame in ws:
                        message = json.loads(frame)
                        if message.get("is_final") and message.get("transcript"):
                            finals.append(message["transcript"].strip())
                        if message.get("is_last"):
                            result.transcript_at = time.perf_counter()
                            result.text = " ".join(finals)
                            return

                receiving = asyncio.create_task(receive())
                frames = [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
                frame_s = frame_bytes / BYTES_PER_SECOND
                for index, frame in enumerate(frames):
                    # A frame leaves once its audio has been "recorded".
                    await asyncio.sleep(max(0.0, start + (index + 1) * frame_s - loop.time()))
                    await ws.send(frame)
                await asyncio.sleep(max(0.0, start + len(pcm) / BYTES_PER_SECOND - loop.time()))
                await ws.send('{"type": "end"}')
                result.stop_at = time.perf_counter()
                await receiving
    except TimeoutError:
        result.error = "timeout"
    except (OSError, ValueError) as err:
        result.error = f"{type(err).__name__}: {err}"
    return result


async def steady_direct(
    emulator_port: int,
    pcm: bytes,
    expected: str | None,
    streams: int,
    duration: float,
    warmup: float = 2.0,
) -> list[Result]:
    """``steady_load`` for the emulator-direct baseline."""
    loop = asyncio.get_running_loop()
    origin = loop.time() + 0.2
    window_start = origin + warmup
    window_end = window_start + duration
    length = len(pcm) / BYTES_PER_SECOND
    kept: list[Result] = []

    async def stream(index: int) -> None:
        start = origin + length * index / streams
        while start < window_end:
            await asyncio.sleep(max(0.0, start - loop.time() - 0.05))
            result = await direct_request(emulator_port, pcm, start=start, expected=expected)
            if window_start <= start + length < window_end:
                kept.append(result)
            start = max(start + length, loop.time())

    await asyncio.gather(*(stream(i) for i in range(streams)))
    return kept
