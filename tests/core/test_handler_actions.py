"""The Wyoming adapter carries out every action the request machine can emit, and the
operations layer counts only the ones it names (the rest pass with one look-up)."""

from __future__ import annotations

import typing

from wyoming_lightning.core import actions as act
from wyoming_lightning.ops.guard import OBSERVED, Occurrence
from wyoming_lightning.wyoming.handler import ClientHandler


def test_every_action_has_a_way_to_be_carried_out() -> None:
    assert set(ClientHandler._carry_out) == set(typing.get_args(act.Action))


def test_the_ticket_counts_only_actions_there_are() -> None:
    assert set(typing.get_args(act.Action)) | {Occurrence} >= OBSERVED
    assert act.SendAudio not in OBSERVED, "the audio path is never looked at twice"
