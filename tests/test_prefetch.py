"""`prefetch_to_device`: order kept, puts run ahead of the consumer, the source closed."""

from __future__ import annotations

import pytest

from netspec.train.prefetch import prefetch_to_device


def test_yields_every_batch_in_order_put_ahead_by_size():
    puts: list[int] = []

    def put(x: int) -> int:
        puts.append(x)
        return 10 * x

    stream = prefetch_to_device(iter(range(6)), put, size=2)
    assert next(stream) == 0
    assert puts == [0, 1, 2]  # batch 0 consumed while 1 and 2 are already on their way
    assert next(stream) == 10
    assert puts == [0, 1, 2, 3]
    assert list(stream) == [20, 30, 40, 50]


def test_size_zero_puts_each_batch_just_in_time():
    puts: list[int] = []
    stream = prefetch_to_device(iter("abc"), lambda x: puts.append(x) or x, size=0)
    assert next(stream) == "a"
    assert puts == ["a"]
    assert list(stream) == ["b", "c"]


def test_closing_early_closes_the_source():
    closed = []

    def source():
        try:
            yield from range(100)
        finally:
            closed.append(True)

    stream = prefetch_to_device(source(), lambda x: x, size=2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert closed == [True]


def test_negative_size_is_refused():
    with pytest.raises(ValueError, match="prefetch size must be >= 0"):
        list(prefetch_to_device(iter([1]), lambda x: x, size=-1))
