"""Pack sizing: which workloads pack, bucket sizes, and the pack size under the cap."""

from __future__ import annotations

from tests.workers.training.pack_workloads import Conv, TinyLSTM
from workers.training.packs import can_pack, choose_pack_size, pack_bucket


def test_pack_sizes() -> None:
    lstm = TinyLSTM()
    assert can_pack(lstm) == (True, "")
    assert [pack_bucket(k, 64) for k in (1, 3, 8, 9, 40, 64)] == [1, 4, 8, 16, 64, 64]
    assert pack_bucket(40, 48) == 48
    assert choose_pack_size(lstm, 100, "cpu", cap=32) == 32
    assert choose_pack_size(lstm, 5, "cpu", cap=32) == 5
    assert choose_pack_size(Conv(), 100, "cpu", cap=32) == 1
