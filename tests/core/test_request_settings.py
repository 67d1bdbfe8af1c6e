"""One path from a setting to its use: a server setting named as a field of the request's
configuration reaches every request with its value, with no hand-kept mirror in between.

``Services.request_config`` spells out only what a request computes (the URL, the session's
options, the dialect's choices); every other field of ``RequestConfig`` (and of the
``SegmenterConfig`` it extends) that shares a name with a setting in config.py takes the
setting's value by that name. These tests change each such setting away from its default and
look for the change in the request, so a field added on both sides needs nothing more.
"""

from __future__ import annotations

import dataclasses

import pytest

from wyoming_lightning.core.request import RequestConfig
from wyoming_lightning.core.segmenter import SegmenterConfig
from wyoming_lightning.services import Services, passed_settings
from wyoming_lightning.settings.config import Settings, load_settings

SETTING_NAMES = {f.name for f in dataclasses.fields(Settings)}
SHARED = sorted(f.name for f in dataclasses.fields(RequestConfig) if f.name in SETTING_NAMES)


def changed(value: object) -> object:
    """A value other than ``value``, of its kind, that every check of config.py accepts."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 7
    if isinstance(value, float):
        return value + 1.5
    if value is None:
        return 7
    raise AssertionError(f"no changed value for {value!r}")


def test_the_shared_fields_are_the_request_settings() -> None:
    """The names that flow by themselves: if this list changes, a setting joined or left."""
    assert SHARED == [
        "dictation_after_s",
        "early_finalize",
        "final_timeout_s",
        "finalize_after_ms",
        "max_command_s",
        "max_utterance_s",
        "no_speech_timeout_s",
        "pause_tail_ms",
        "re_recognize",
        "rejoin",
        "response_timeout_s",
        "stall_timeout_s",
        "streaming",
        "turn_complete_ms",
        "turn_finalize_ms",
        "turn_unfinished_ms",
        "vad_lag_ms",
    ]


@pytest.mark.parametrize("name", SHARED)
def test_each_request_setting_reaches_the_request_by_its_name(name: str) -> None:
    base = load_settings(["--endpointing"], {"SMALLEST_API_KEY": "k"})
    value = changed(getattr(base, name))
    settings = dataclasses.replace(base, **{name: value})  # type: ignore[arg-type]
    config = Services(settings).request_config(None, "en")
    assert getattr(config, name) == value


def test_every_segmenter_setting_is_a_request_setting() -> None:
    """The segmenter reads the request's configuration itself (RequestConfig extends it)."""
    segmenter = {f.name for f in dataclasses.fields(SegmenterConfig)}
    assert segmenter <= {f.name for f in dataclasses.fields(RequestConfig)}
    derived = {
        "endpoint_silence_ms",
        "turn_judge",
        "turn_acoustic",
    }  # computed per request (services.py)
    assert segmenter - derived <= SETTING_NAMES, "each declared in config.py"


def test_a_field_added_on_both_sides_flows_with_no_other_code() -> None:
    """What adding a request setting takes: the declaration and the field, nothing between."""

    @dataclasses.dataclass(frozen=True)
    class WithNewSetting:
        pause_tail_ms: int = 0
        not_a_setting: int = 0

    settings = dataclasses.replace(Settings(), pause_tail_ms=123)
    assert passed_settings(WithNewSetting, settings) == {"pause_tail_ms": 123}
