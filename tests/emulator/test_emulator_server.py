"""The emulator over real loopback WebSockets: handshake rules and the documented protocol."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from tests.emulator.emulator_client import GUARD, read_json, read_until_final
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer, SessionState
from wyoming_lightning.emulator.faults import Fault
from wyoming_lightning.emulator.tones import encode_phrase, silence

pytestmark = pytest.mark.timeout(30)

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
END = json.dumps({"type": "end"})
FINALIZE = json.dumps({"type": "finalize"})
CLOSE_STREAM = json.dumps({"type": "close_stream"})


@pytest.fixture
async def emu() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(EmulatorConfig(api_key=KEY), port=0) as server:
        yield server


def session(url: str, headers: dict[str, str] | None = None) -> Any:
    return connect(url, additional_headers=AUTH if headers is None else headers)


async def send_audio(ws: ClientConnection, pcm: bytes, chunk: int = 4096) -> None:
    for i in range(0, len(pcm), chunk):
        await ws.send(pcm[i : i + chunk])


async def read_to_close(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every message until the server closes normally (fails on an abnormal close)."""
    async with asyncio.timeout(GUARD):
        return [json.loads(m) async for m in ws]


def finals(messages: list[dict[str, Any]]) -> list[str]:
    return [m["transcript"] for m in messages if m.get("is_final")]


async def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with session(url, headers):
            pass
    return refused.value.response.status_code


# Handshake


async def test_unknown_path_is_404(emu: EmulatorServer) -> None:
    assert await status_of(emu.base_url + "/api/v1/lightning/get_txt") == 404
    assert emu.sessions[-1].handshake_status == 404
    assert emu.sessions[-1].state is SessionState.REFUSED


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": KEY}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}],
    ids=["missing", "no-scheme", "empty-token", "basic"],
)
async def test_missing_or_malformed_auth_is_401(
    emu: EmulatorServer, headers: dict[str, str]
) -> None:
    assert await status_of(emu.lightning_url, headers) == 401


async def test_wrong_key_is_401_and_the_key_is_not_echoed(emu: EmulatorServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with session(emu.pulse_url, {"Authorization": "Bearer wrong-key"}):
            pass
    assert refused.value.response.status_code == 401
    assert b"wrong-key" not in refused.value.response.body
    assert KEY not in repr(emu.config)


async def test_without_a_configured_key_any_bearer_key_is_accepted() -> None:
    async with EmulatorServer(port=0) as server:
        async with session(server.lightning_url, {"Authorization": "Bearer whatever"}) as ws:
            await ws.send(END)
            assert finals(await read_to_close(ws)) == [""]
        assert await status_of(server.lightning_url, {}) == 401


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("lightning", "word_timestamps=True"),
        ("lightning", "full_transcript=1"),
        ("lightning", "sample_rate=11025"),
        ("lightning", "sample_rate=16k"),
        ("lightning", "language=xx"),
        ("lightning", "language=ja"),  # a Pulse language, not a Lightning one
        ("pulse", "language=multi"),  # a Lightning option, not a Pulse one
        ("pulse", "language=lt"),
        ("lightning", "encoding=mp3"),
        ("lightning", "numerals=yes"),
        ("lightning", "keywords=word:0"),
        ("lightning", "keywords=word"),
        ("pulse", "keywords="),
        ("pulse", "keywords=word:-1"),
        ("pulse", "keywords=word:lots"),
        ("pulse", "eou_timeout_ms=50"),
        ("pulse", "eou_timeout_ms=10001"),
        ("pulse", "eou_timeout_ms=fast"),
        ("live", ""),
        ("live", "model=lightning"),
    ],
)
async def test_bad_parameters_are_400(emu: EmulatorServer, path: str, query: str) -> None:
    url = {
        "lightning": emu.lightning_url + "?",
        "pulse": emu.pulse_url + "?",
        "live": emu.base_url + "/waves/v1/stt/live?",
    }[path]
    assert await status_of(url + query) == 400


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("lightning", "language=multi&encoding=linear16&sample_rate=48000&numerals=auto"),
        ("lightning", "keywords=kitchen:5&keywords=lights:2.5,lamp:1"),
        ("lightning", "redact_pii=false&diarize=true&sentence_timestamps=false&unknown=1"),
        ("lightning", "eou_timeout_ms=5"),  # Pulse-only: ignored on Lightning
        ("pulse", "language=north_indic&keywords=kitchen%20light:3.5,lamp:0,x:20"),
        ("pulse", "keywords=Kitchen%20Lamp:2,thermostat,word:25"),  # weights are optional
        ("pulse", "keywords=" + ",".join(f"w{i}" for i in range(1000))),
        ("pulse", "language=multi-south-indic&eou_timeout_ms=100&vad_events=false&punctuate=true"),
        ("pulse", "vad_events=yes&word_timestamps=True&endpointing=0"),  # not "true": false
        ("live", "model=pulse&language=hi&eou_timeout_ms=10000"),
    ],
)
async def test_documented_parameters_are_accepted(
    emu: EmulatorServer, path: str, query: str
) -> None:
    url = {
        "lightning": emu.lightning_url + "?",
        "pulse": emu.pulse_url + "?",
        "live": emu.live_url + "&",
    }
    async with session(url[path] + query) as ws:
        await ws.send(END if path == "lightning" else CLOSE_STREAM)
        messages = await read_to_close(ws)
    assert [m["is_last"] for m in messages] == [True]


# Results


async def test_lightning_end_flushes_finals_then_is_last_then_1000(emu: EmulatorServer) -> None:
    pcm = encode_phrase("one two three") + silence(1000) + encode_phrase("four five")
    async with session(emu.lightning_url + "?language=de") as ws:
        await send_audio(ws, pcm)
        await ws.send(END)
        messages = await read_to_close(ws)
        assert ws.close_code == 1000
    await emu.wait_idle(GUARD)
    assert finals(messages) == ["one two three", "four five"]
    assert [m["is_last"] for m in messages].count(True) == 1 and messages[-1]["is_last"]
    assert all(m["language"] == "de" for m in messages if m["is_final"])
    assert all("from_finalize" not in m for m in messages)
    assert all(not m["is_final"] for m in messages if "language" not in m)  # interims
    assert len({m["session_id"] for m in messages}) == 1
    record = emu.sessions[-1]
    assert record.close_code == 1000 and record.closed_by == "server"
    assert record.audio_bytes_received == len(pcm)
    assert record.binary_frame_sizes == [4096] * (len(pcm) // 4096) + [len(pcm) % 4096]
    assert record.text_frames_received == [END]
    assert record.messages_sent == messages
    assert record.params == {"language": "de"}


async def test_pulse_finalize_keeps_the_socket_open_for_the_next_utterance(
    emu: EmulatorServer,
) -> None:
    async with session(emu.pulse_url) as ws:
        await send_audio(ws, encode_phrase("six seven"))
        await ws.send(FINALIZE)
        first = await read_until_final(ws)
        assert (first[-1]["transcript"], first[-1]["from_finalize"]) == ("six seven", True)
        assert first[-1]["is_last"] is False
        await send_audio(ws, encode_phrase("eight"))
        await ws.send(FINALIZE)
        second = await read_until_final(ws)
        assert (second[-1]["transcript"], second[-1]["from_finalize"]) == ("eight", True)
        await ws.send(CLOSE_STREAM)
        rest = await read_to_close(ws)
    assert rest == [
        {
            "type": "transcription",
            "status": "success",
            "transcription": "",
            "session_id": first[-1]["session_id"],
            "transcript": "",
            "is_final": True,
            "is_last": True,
            "language": "en",
            "from_finalize": False,
        }
    ]


async def test_finalize_over_silence_gives_one_empty_final(emu: EmulatorServer) -> None:
    async with session(emu.live_url) as ws:
        await send_audio(ws, silence(500))
        await ws.send(FINALIZE)
        messages = await read_until_final(ws)
        await ws.send(CLOSE_STREAM)
        await read_to_close(ws)
    assert len(messages) == 1
    assert (messages[0]["transcript"], messages[0]["from_finalize"]) == ("", True)


async def test_close_stream_sends_the_pending_final_with_is_last(emu: EmulatorServer) -> None:
    async with session(emu.pulse_url) as ws:
        await send_audio(ws, encode_phrase("nine"))
        await ws.send(CLOSE_STREAM)
        messages = await read_to_close(ws)
        assert ws.close_code == 1000
    assert [(m["transcript"], m["is_last"]) for m in messages if m["is_final"]] == [("nine", True)]
    assert messages[-1]["from_finalize"] is False


async def test_server_eou_fires_on_silence_inside_audio_sent_at_once(emu: EmulatorServer) -> None:
    """Audio sent much faster than real time still gets its end of utterance."""
    pcm = encode_phrase("two") + silence(900) + encode_phrase("three")
    async with session(emu.pulse_url) as ws:
        await ws.send(pcm)  # one frame, about 1.3 s of audio
        eou = await read_until_final(ws)
        assert (eou[-1]["transcript"], eou[-1]["from_finalize"]) == ("two", False)
        await ws.send(CLOSE_STREAM)
        rest = await read_to_close(ws)
    assert finals(rest) == ["three"]


async def test_words_and_full_transcript_when_asked(emu: EmulatorServer) -> None:
    query = "?word_timestamps=true&full_transcript=true"
    pcm = encode_phrase("one two") + silence(1000) + encode_phrase("three")
    async with session(emu.lightning_url + query) as ws:
        await send_audio(ws, pcm)
        await ws.send(END)
        messages = await read_to_close(ws)
    final_messages = [m for m in messages if m["is_final"]]
    words = [w for m in final_messages for w in m["words"]]
    assert [w["word"] for w in words] == ["one", "two", "three"]
    assert set(words[0]) == {"word", "start", "end", "confidence"}
    assert [round(w["start"], 1) for w in words] == [0.0, 0.3, 1.5]
    assert all(w["start"] < w["end"] and 0 < w["confidence"] <= 1 for w in words)
    assert [m["full_transcript"] for m in final_messages] == ["one two", "one two three"]
    assert all("words" in m for m in messages)  # interims too


async def test_no_words_unless_asked(emu: EmulatorServer) -> None:
    async with session(emu.lightning_url) as ws:
        await send_audio(ws, encode_phrase("one"))
        await ws.send(END)
        messages = await read_to_close(ws)
    assert messages and all("words" not in m and "full_transcript" not in m for m in messages)


async def test_vad_events_on_pulse(emu: EmulatorServer) -> None:
    async with session(emu.pulse_url + "?vad_events=true") as ws:
        await send_audio(ws, silence(200) + encode_phrase("four"))
        await ws.send(CLOSE_STREAM)
        messages = await read_to_close(ws)
    events = [m for m in messages if m["type"] != "transcription"]
    assert [(e["type"], e["timestamp"]) for e in events] == [
        ("speech_started", 0.2),
        ("speech_ended", 0.4),
    ]
    assert messages[-1]["type"] == "speech_ended" and messages[-2]["is_last"]
    assert all(e["session_id"] == messages[-1]["session_id"] for e in events)


@pytest.mark.parametrize("rate", [8000, 48000])
async def test_audio_at_other_rates_over_the_wire(emu: EmulatorServer, rate: int) -> None:
    async with session(emu.lightning_url + f"?sample_rate={rate}") as ws:
        await send_audio(ws, encode_phrase("five zero", rate), chunk=1001)
        await ws.send(END)
        assert finals(await read_to_close(ws)) == ["five zero"]


async def test_bad_text_frames_get_error_frames_and_the_session_continues(
    emu: EmulatorServer,
) -> None:
    async with session(emu.lightning_url) as ws:
        await send_audio(ws, encode_phrase("one"))
        for text in ["hello", FINALIZE, json.dumps({"type": "close_stream"})]:
            await ws.send(text)
            error = await read_json(ws)
            while "type" not in error:  # skip interims
                error = await read_json(ws)
            assert error["type"] == "error" and error["status"] == "error" and error["message"]
        await ws.send(END)
        assert finals(await read_to_close(ws)) == ["one"]


async def test_pulse_does_not_take_the_lightning_end_frame(emu: EmulatorServer) -> None:
    async with session(emu.pulse_url) as ws:
        await ws.send(END)
        assert (await read_json(ws))["type"] == "error"
        await ws.send(CLOSE_STREAM)
        assert [m["is_last"] for m in await read_to_close(ws)] == [True]


async def test_undecodable_encoding_gets_an_error_frame_then_close(emu: EmulatorServer) -> None:
    async with session(emu.pulse_url + "?encoding=mulaw&sample_rate=8000") as ws:
        error = await read_json(ws)
        with pytest.raises(ConnectionClosedError):
            await read_json(ws)
    await emu.wait_idle(GUARD)
    assert error["type"] == "error" and error["status"] == "error" and "mulaw" in error["message"]
    assert emu.sessions[-1].close_code == 1003


# Region and capacity


@pytest.mark.parametrize("language", ["zh", "yue", "ja", "ko", "multi-asian"])
async def test_default_region_drops_us_only_languages_without_a_frame(
    emu: EmulatorServer, language: str
) -> None:
    async with session(emu.live_url + "&language=" + language) as ws:
        with pytest.raises(ConnectionClosedError) as closed:
            await read_json(ws)
    assert closed.value.rcvd is None  # no close frame at all
    await emu.wait_idle(GUARD)
    assert emu.sessions[-1].close_code == 1006 and emu.sessions[-1].messages_sent == []


async def test_us_region_serves_japanese() -> None:
    config = EmulatorConfig(region="us")
    async with (
        EmulatorServer(config, port=0) as server,
        session(server.pulse_url + "?language=ja") as ws,
    ):
        await send_audio(ws, encode_phrase("three"))
        await ws.send(CLOSE_STREAM)
        messages = await read_to_close(ws)
    assert finals(messages) == ["three"] and messages[-1]["language"] == "ja"


@pytest.mark.parametrize("language", ["ta", "te", "kn", "ml", "multi-south-indic"])
async def test_us_region_refuses_south_indic_languages_with_an_error_frame(language: str) -> None:
    async with (
        EmulatorServer(EmulatorConfig(region="us"), port=0) as server,
        session(server.live_url + "&language=" + language) as ws,
    ):
        frame = await read_json(ws)
        with pytest.raises(ConnectionClosed):
            await read_json(ws)
    assert frame["type"] == "error"
    assert frame["error_code"] == "LANGUAGE_NOT_ENABLED_IN_REGION" and language in frame["message"]


async def test_sessions_beyond_the_limit_are_closed_with_1008() -> None:
    async with EmulatorServer(EmulatorConfig(max_sessions=1), port=0) as server:
        async with session(server.pulse_url) as first:
            async with session(server.pulse_url) as second:
                with pytest.raises(ConnectionClosedError) as closed:
                    await read_json(second)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "concurrency limit")
            await first.send(CLOSE_STREAM)
            await read_to_close(first)
        async with session(server.pulse_url) as third:
            await third.send(CLOSE_STREAM)
            assert [m["is_last"] for m in await read_to_close(third)] == [True]


# Timing and lifecycle


async def test_finalize_delay_holds_one_session_without_blocking_others() -> None:
    config = EmulatorConfig(finalize_delay_ms=2000)
    async with (
        EmulatorServer(config, port=0) as server,
        session(server.pulse_url) as slow,
        session(server.pulse_url) as other,
    ):
        await send_audio(slow, encode_phrase("one"))
        await slow.send(FINALIZE)
        slow_final = asyncio.create_task(read_until_final(slow))
        # The other session runs a whole finalize-free exchange meanwhile...
        await send_audio(other, encode_phrase("two") + silence(900))
        assert finals(await read_until_final(other)) == ["two"]
        # ...while the first one's final is still held back by the delay.
        assert not slow_final.done()
        assert finals(await slow_final) == ["one"]


async def test_active_sessions_and_wait_idle(emu: EmulatorServer) -> None:
    assert emu.active_sessions == 0
    async with session(emu.pulse_url) as ws:
        assert emu.active_sessions == 1
        assert emu.sessions[-1].open
        await ws.send(encode_phrase("one"))
    await emu.wait_idle(timeout=GUARD)
    assert emu.active_sessions == 0
    record = emu.sessions[-1]
    assert record.closed and record.closed_by == "client" and record.close_code == 1000


async def test_stopping_the_server_closes_open_sessions_with_1001() -> None:
    server = EmulatorServer(port=0)
    await server.start()
    ws = await connect(server.pulse_url, additional_headers=AUTH)
    try:
        await server.close()
        with pytest.raises(ConnectionClosed) as closed:
            await read_json(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert server.active_sessions == 0
        assert server.sessions[-1].close_code == 1001
    finally:
        await ws.close()


async def test_wait_for_audio_and_wait_for_wake_on_server_progress(emu: EmulatorServer) -> None:
    pcm = encode_phrase("one two three")
    async with session(emu.pulse_url) as ws:
        await send_audio(ws, pcm[:8000])
        record = await emu.wait_for_audio(8000, timeout=GUARD)
        assert record is emu.sessions[-1] and record.audio_bytes_received == 8000
        with pytest.raises(TimeoutError):
            await emu.wait_for_audio(8001, timeout=0.05)  # nothing more was sent
        await send_audio(ws, pcm[8000:])
        await ws.send(FINALIZE)
        await emu.wait_for(lambda: bool(record.finals), timeout=GUARD)
        assert record.finals[-1]["transcript"] == "one two three"
        assert record.text_frames_received == [FINALIZE]


# Today's Pulse: keepalive, result shapes, server endpointing, and the live service's variants


async def test_keepalive_is_answered_with_pong_and_changes_nothing(emu: EmulatorServer) -> None:
    async with session(emu.live_url) as ws:
        await ws.send(json.dumps({"type": "keepalive"}))
        assert await read_json(ws) == {"type": "pong"}
        await send_audio(ws, encode_phrase("one two"))
        await ws.send(json.dumps({"type": "keepalive"}))
        await ws.send(CLOSE_STREAM)
        messages = await read_to_close(ws)
    assert {"type": "pong"} in messages
    assert finals(messages) == ["one two"]


async def test_results_carry_type_status_and_both_text_fields(emu: EmulatorServer) -> None:
    async with session(emu.live_url) as ws:
        await send_audio(ws, encode_phrase("four five six"))
        await ws.send(CLOSE_STREAM)
        messages = await read_to_close(ws)
    assert messages and all(m["type"] == "transcription" for m in messages)
    assert all(m["status"] == "success" and m["transcript"] == m["transcription"] for m in messages)


async def test_the_end_of_utterance_timer_runs_whatever_endpointing_says(
    emu: EmulatorServer,
) -> None:
    # The vendor: eou_timeout_ms defaults to 800 and endpointing=false does not turn it off;
    # only a longer timer keeps a 1 s pause inside one final.
    pcm = encode_phrase("seven") + silence(1000) + encode_phrase("eight")
    for query in ("", "&endpointing=false"):
        async with session(emu.live_url + query) as ws:
            await send_audio(ws, pcm)
            first = await read_until_final(ws)  # no finalize sent: the server's own end of turn
            assert (first[-1]["transcript"], first[-1]["from_finalize"]) == ("seven", False)
            await ws.send(CLOSE_STREAM)
            assert finals(await read_to_close(ws)) == ["eight"]
    async with session(emu.live_url + "&endpointing=false&eou_timeout_ms=1500") as ws:
        await send_audio(ws, pcm)
        await ws.send(FINALIZE)
        answer = await read_until_final(ws)
        assert (answer[-1]["transcript"], answer[-1]["from_finalize"]) == ("seven eight", True)
        await ws.send(CLOSE_STREAM)
        await read_to_close(ws)
    await emu.wait_idle(GUARD)
    assert [len(s.finals) for s in emu.sessions] == [2, 2, 2]


TWELVE = "one two three four five six seven eight nine zero one two"


async def test_finalize_on_words_is_on_by_default_at_most_ten_words_a_final(
    emu: EmulatorServer,
) -> None:
    # The live probe with default parameters: no final longer than 10 words, no from_finalize
    # needed to see it. The word-count final comes while the audio flows, before the finalize.
    async with session(emu.live_url) as ws:
        await send_audio(ws, encode_phrase(TWELVE))
        early = await read_until_final(ws)
        assert (early[-1]["transcript"], early[-1]["from_finalize"]) == (
            " ".join(TWELVE.split()[:10]),
            False,
        )
        await ws.send(FINALIZE)
        answer = await read_until_final(ws)
        assert (answer[-1]["transcript"], answer[-1]["from_finalize"]) == ("one two", True)
        await ws.send(CLOSE_STREAM)
        await read_to_close(ws)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("&finalize_on_words=false", [TWELVE, ""]),
        ("&finalize_on_words=False", [TWELVE, ""]),  # compared with "true": anything else is off
        ("&max_words=4", ["one two three four", "five six seven eight", "nine zero one two", ""]),
    ],
)
async def test_finalize_on_words_and_max_words_by_query(
    emu: EmulatorServer, query: str, expected: list[str]
) -> None:
    async with session(emu.live_url + "&word_timestamps=true" + query) as ws:
        await send_audio(ws, encode_phrase(TWELVE))
        await ws.send(FINALIZE)
        await ws.send(CLOSE_STREAM)
        assert finals(await read_to_close(ws)) == expected


async def test_a_burst_gets_its_word_count_finals_before_the_answer(emu: EmulatorServer) -> None:
    # Audio and finalize sent at once: every final arrives after the finalize went out, the
    # word-count ones first, in stream order, the answer last with the remaining words.
    async with session(emu.live_url + "&word_timestamps=true") as ws:
        await send_audio(ws, encode_phrase(TWELVE) + silence(300))
        await ws.send(FINALIZE)
        got = await read_until_final(ws)
        while not got[-1].get("from_finalize"):
            got += await read_until_final(ws)
        await ws.send(CLOSE_STREAM)
        await read_to_close(ws)
    results = [m for m in got if m.get("is_final")]
    assert [m["transcript"] for m in results] == [" ".join(TWELVE.split()[:10]), "one two"]
    ends = [w["end"] for m in results for w in m["words"]]
    assert ends == sorted(ends), "finals are incremental and do not overlap"


async def test_live_defaults_fault_ignores_the_clients_wishes() -> None:
    config = EmulatorConfig(faults=(Fault("live-defaults"),))
    async with EmulatorServer(config, port=0) as server:
        url = server.live_url + "&finalize_on_words=false&eou_timeout_ms=10000"
        async with session(url) as ws:
            await send_audio(ws, encode_phrase(TWELVE) + silence(1000) + encode_phrase("one"))
            await ws.send(CLOSE_STREAM)
            assert finals(await read_to_close(ws)) == [
                " ".join(TWELVE.split()[:10]),
                "one two",
                "one",
            ]


async def test_no_pong_fault_reads_keepalive_and_never_answers() -> None:
    config = EmulatorConfig(faults=(Fault("no-pong"),))
    async with EmulatorServer(config, port=0) as server, session(server.live_url) as ws:
        await ws.send(json.dumps({"type": "keepalive"}))
        pong = await ws.ping()  # the WebSocket protocol's own ping is still answered
        async with asyncio.timeout(GUARD):
            await pong
        await send_audio(ws, encode_phrase("one"))
        await ws.send(CLOSE_STREAM)
        messages = await read_to_close(ws)
    assert {"type": "pong"} not in messages
    assert finals(messages) == ["one"]


@pytest.mark.parametrize("text_field", ["transcription", "transcript", "alternate"])
async def test_the_live_services_variants(text_field: str) -> None:
    config = EmulatorConfig(from_finalize=False, text_field=text_field)
    async with (
        EmulatorServer(config, port=0) as server,
        session(server.live_url + "&endpointing=false") as ws,
    ):
        messages: list[dict[str, Any]] = []
        for phrase in ("one", "two"):
            await send_audio(ws, encode_phrase(phrase))
            await ws.send(FINALIZE)
            messages += await read_until_final(ws)
        await ws.send(CLOSE_STREAM)
        messages += await read_to_close(ws)
    fields = [({"transcript", "transcription"} & set(m)) for m in messages]
    assert all(len(f) == 1 for f in fields), "one text field per result"
    if text_field == "alternate":
        assert [f.pop() for f in fields] == ["transcript", "transcription"] * (len(fields) // 2) + [
            "transcript"
        ] * (len(fields) % 2)
    else:
        assert all(f == {text_field} for f in fields)
    texts = [next(m[k] for k in ("transcript", "transcription") if k in m) for m in messages]
    assert [t for t, m in zip(texts, messages, strict=True) if m["is_final"]] == ["one", "two", ""]
    assert all("from_finalize" not in m for m in messages)
