"""bench/run.py's report: each round's ratio against the same round's
reference, and the spread of those ratios (issue #9: repeated runs within
10% of each other on the ratios)."""

import argparse

import pytest

from bench.run import Reference, Result, markdown, round_ratios, spread

ARGS = argparse.Namespace(seconds=5, repeat=3)


def row(contender, runs, rounds=(0, 1, 2)):
    return Result(contender, "hello", 64, rps=sorted(runs)[1], runs=list(runs),
                  rounds=list(rounds))


def test_ratios_pair_each_round_with_the_references_same_round():
    ref = row(Reference.name, [1000, 2000, 4000])
    askr = row("askr-worker-uring", [3000, 6000, 12000])

    assert round_ratios(askr, ref) == [3.0, 3.0, 3.0]
    assert spread(round_ratios(askr, ref)) == 0.0


def test_a_missed_round_is_left_out_not_paired_with_another():
    ref = row(Reference.name, [1000, 2000, 4000])
    askr = row("askr-worker-uring", [3000, 10000], rounds=(0, 2))

    assert round_ratios(askr, ref) == [3.0, 2.5]


def test_spread_is_range_over_median():
    assert spread([2.0, 2.2, 1.8]) == pytest.approx(0.2)
    assert spread([2.0]) is None


def test_report_counts_rows_within_ten_percent():
    results = [
        row(Reference.name, [1000, 1000, 1000]),
        row("askr-worker-uring", [3000, 3100, 2950]),    # 5%
        row("askr-classic-epoll", [2000, 2600, 2000]),   # 30%
    ]

    text = markdown(results, {"cores": 2}, ARGS)

    assert "| 3.00 / 3.10 / 2.95 | 5% |" in text
    assert "| 2.00 / 2.60 / 2.00 | 30% |" in text
    assert "within 10% across rounds: 1 of 2" in text
    assert "widest: hello c=64 askr-classic-epoll, 30%" in text
