"""batches(): cutting rows into calls by count and JSON size."""

from __future__ import annotations

import pytest

from responsys_assets.lib.responsys import (
    Recipient,
    batches,
)
from responsys_assets.lib.responsys.batching import _dumps


def test_batches_by_count():
    sizes = [len(b) for b in batches([["x"]] * 450)]
    assert sizes == [200, 200, 50]
    assert list(batches([])) == []


def test_batches_by_bytes_and_oversize_record():
    record = ["v" * 98]  # 102 bytes of JSON + 1 for the comma
    got = list(batches([record] * 10, max_records=200, max_bytes=350))
    assert [len(b) for b in got] == [3, 3, 3, 1]
    assert all(sum(len(_dumps(r)) + 1 for r in b) <= 350 for b in got)
    with pytest.raises(ValueError, match="record 1"):
        list(batches([["a"], ["b" * 1000]], max_bytes=500))


def test_batches_accept_recipients():
    people = [Recipient("L", "F", customer_id=str(i)) for i in range(205)]
    assert [len(b) for b in batches(people)] == [200, 5]
