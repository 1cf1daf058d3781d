"""Self-check of the oracle's window rule (SPEC §4) on hand-computed cases: no binary, no data.

A record at event time t belongs to every window with start = offset + k*slide and
start <= t < start + size. The expected starts below are worked out by hand, not by the oracle's
own arithmetic.
"""
import datetime
import random

import oracle

MIN = 60 * 1000
HOUR = 60 * MIN
DAY = 24 * HOUR


def utc(*args):
    """Epoch milliseconds of a UTC wall time."""
    return int(datetime.datetime(*args, tzinfo=datetime.timezone.utc).timestamp()) * 1000


def starts(t, size, slide=None, offset=0):
    return list(oracle.Oracle(size, slide, offset).window_starts(t))


def test_tumbling_windows_hold_their_start_and_not_their_end():
    four_h = 4 * HOUR
    assert starts(0, four_h) == [0]
    assert starts(four_h - 1, four_h) == [0]
    assert starts(four_h, four_h) == [four_h]
    assert starts(utc(2024, 1, 6, 3, 59, 59), four_h) == [utc(2024, 1, 6, 0)]
    assert starts(utc(2024, 1, 6, 4), four_h) == [utc(2024, 1, 6, 4)]
    assert starts(utc(2024, 1, 6, 10, 7), four_h) == [utc(2024, 1, 6, 8)]


def test_hopping_1h_every_15m_gives_four_windows():
    t = utc(2024, 1, 6, 10, 7)
    assert starts(t, HOUR, 15 * MIN) == [utc(2024, 1, 6, 9, 15), utc(2024, 1, 6, 9, 30),
                                         utc(2024, 1, 6, 9, 45), utc(2024, 1, 6, 10, 0)]
    # On a boundary: 10:00 opens a window and ends the 09:00 one.
    t = utc(2024, 1, 6, 10)
    assert starts(t, HOUR, 15 * MIN) == [utc(2024, 1, 6, 9, 15), utc(2024, 1, 6, 9, 30),
                                         utc(2024, 1, 6, 9, 45), utc(2024, 1, 6, 10, 0)]


def test_hopping_with_an_offset():
    # Starts at :05, :20, :35, :50.
    assert starts(utc(2024, 1, 6, 10, 7), HOUR, 15 * MIN, 5 * MIN) == [
        utc(2024, 1, 6, 9, 20), utc(2024, 1, 6, 9, 35), utc(2024, 1, 6, 9, 50),
        utc(2024, 1, 6, 10, 5)]
    assert starts(utc(2024, 1, 6, 10, 4, 59), HOUR, 15 * MIN, 5 * MIN) == [
        utc(2024, 1, 6, 9, 5), utc(2024, 1, 6, 9, 20), utc(2024, 1, 6, 9, 35),
        utc(2024, 1, 6, 9, 50)]
    # An offset of more than a slide, or a negative one, names the same grid.
    for offset in (20 * MIN, 65 * MIN, -10 * MIN):
        assert starts(utc(2024, 1, 6, 10, 7), HOUR, 15 * MIN, offset) == [
            utc(2024, 1, 6, 9, 20), utc(2024, 1, 6, 9, 35), utc(2024, 1, 6, 9, 50),
            utc(2024, 1, 6, 10, 5)]


def test_tumbling_days_with_an_offset():
    # Days that start at 05:00 UTC (midnight in New York in winter).
    assert starts(utc(2024, 1, 6, 4, 59, 59), DAY, None, 5 * HOUR) == [utc(2024, 1, 5, 5)]
    assert starts(utc(2024, 1, 6, 5), DAY, None, 5 * HOUR) == [utc(2024, 1, 6, 5)]


def test_times_before_the_epoch():
    assert starts(-1, 4 * HOUR) == [-4 * HOUR]
    assert starts(-4 * HOUR, 4 * HOUR) == [-4 * HOUR]
    assert starts(-4 * HOUR - 1, 4 * HOUR) == [-8 * HOUR]
    assert starts(-1, HOUR, 15 * MIN) == [-HOUR, -45 * MIN, -30 * MIN, -15 * MIN]
    # 1969-12-31T12:00Z in days starting at 05:00 UTC: the day of 1969-12-31T05:00Z.
    assert utc(1969, 12, 31, 12) == -12 * HOUR
    assert starts(-12 * HOUR, DAY, None, 5 * HOUR) == [utc(1969, 12, 31, 5)] == [-19 * HOUR]


def test_a_slide_longer_than_the_size_leaves_gaps():
    # 10-minute windows every 15 minutes: [0, 10), [15, 25), ...
    assert starts(5 * MIN, 10 * MIN, 15 * MIN) == [0]
    assert starts(12 * MIN, 10 * MIN, 15 * MIN) == []
    assert starts(-3 * MIN, 10 * MIN, 15 * MIN) == []
    assert starts(-6 * MIN, 10 * MIN, 15 * MIN) == [-15 * MIN]


def test_matches_the_definition_over_a_whole_grid():
    # The SPEC's definition checked over every k in a wide range, for small random numbers.
    rng = random.Random(7)
    for _ in range(3000):
        size, slide = rng.randint(1, 40), rng.randint(1, 40)
        offset, t = rng.randint(-100, 100), rng.randint(-300, 300)
        want = [offset + k * slide for k in range(-1000, 1000)
                if offset + k * slide <= t < offset + k * slide + size]
        assert starts(t, size, slide, offset) == want, (t, size, slide, offset)


def test_rows_sum_every_window_a_record_belongs_to():
    o = oracle.Oracle(HOUR, 30 * MIN, counters="delta")
    o.add("A", "d1", utc(2024, 1, 6, 10, 40), 5, 2)
    o.add("A", "d2", utc(2024, 1, 6, 11, 10), 1, 1)
    assert o.rows() == {
        ("A", "2024-01-06T10:00:00Z", "2024-01-06T11:00:00Z"): (5, 2, 1),
        ("A", "2024-01-06T10:30:00Z", "2024-01-06T11:30:00Z"): (6, 3, 2),
        ("A", "2024-01-06T11:00:00Z", "2024-01-06T12:00:00Z"): (1, 1, 1),
    }
