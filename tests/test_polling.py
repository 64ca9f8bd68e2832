"""lab/polling.py: waiting until a condition holds, or until readings stop moving."""

import itertools

import pytest

from lab.polling import Unsettled, settled, wait_for


def readings(*values):
    """A read() that returns `values` in turn, then the last one for ever."""
    it = itertools.chain(values, itertools.repeat(values[-1]))
    return lambda: next(it)


def test_two_reads_a_quiet_period_apart_that_agree_are_settled():
    read = readings(1, 2, 3, 3, 9)
    assert settled(read, 0.001, timeout=5) == 3


def test_a_reading_that_reaches_the_expected_value_returns_at_once():
    assert settled(readings(5), quiet=60, expected=5) == 5  # would wait a minute for stillness
    assert settled(readings(1, 2, 5), quiet=60, expected=5, poll=0.001) == 5


def test_with_a_faster_poll_stillness_is_measured_in_time_not_in_reads():
    read = readings(1, 1, 1, 1, 1, 2, 2)
    # 1 holds still for 4 polls of 1 ms, far under the quiet 0.3 s: it is 2, once quiet, that settles
    assert settled(read, 0.3, poll=0.001, timeout=5) == 2


def test_readings_that_keep_moving_raise_with_the_first_and_the_last():
    read = readings(*range(100))
    with pytest.raises(Unsettled, match=r"did not settle in 3 reads \(0, then 3\)") as raised:
        settled(read, 0.001, tries=3)
    assert (raised.value.first, raised.value.last) == (0, 3)
    with pytest.raises(Unsettled, match="did not settle in 0.01 s"):
        settled(itertools.count().__next__, 0.001, timeout=0.01)


def test_wait_for_returns_the_first_value_that_passes_or_the_last_at_the_timeout():
    assert wait_for(readings(1, 2, 3, 4), lambda value: value >= 3, timeout=5, interval=0.001) == 3
    assert wait_for(itertools.count().__next__, lambda value: False, timeout=0.01, interval=0.001) > 0
