"""Checks of golden.bench: its FLOP count by hand, and its quick mode (what CI can
afford) end to end.

The quick run loads the real MNIST files (the plain loop goes through torchvision) and
spawns one process per core; it checks the table's arithmetic, never a speed.
"""

from __future__ import annotations

import math
import os
import re

from golden import bench


def test_bench_counts_the_cnn_training_flops_by_hand():
    """FlopCounterMode on one step = forward (2 x MACs of conv1, conv2, fc1, fc2) +
    backward: weight gradients of all four, input gradients of all but conv1 (its input
    needs no gradient)."""
    conv1, conv2 = 2 * 28 * 28 * 16 * 9, 2 * 14 * 14 * 32 * 16 * 9
    fc1, fc2 = 2 * 32 * 7 * 7 * 128, 2 * 128 * 10
    assert bench.training_flops_per_image() == (conv1 + conv2 + fc1 + fc2) + (
        conv1 + 2 * (conv2 + fc1 + fc2)
    )


ROW = re.compile(
    r"^(?P<name>.+?)\s+(?P<rate>[\d,]+)\s+(?P<gflops>[\d.]+)\s+(?P<share>\d+)%\s+(?P<ratio>[\d.]+)x$"
)


def printed(text: str, percent: bool = False) -> tuple[float, float]:
    """The interval of the values that print as ``text`` (rounded to its last digit)."""
    digits = text.rstrip("%").replace(",", "")
    value = float(digits) / (100 if percent else 1)
    half = 0.5 * 10.0 ** -len(digits.partition(".")[2]) / (100 if percent else 1)
    return value - half, value + half


def product(a, b):
    return a[0] * b[0], a[1] * b[1]  # of positive intervals


def quotient(a, b):
    return a[0] / b[1], a[1] / b[0] if b[0] > 0 else math.inf  # of positive intervals


def consistent(shown: str, exact: tuple[float, float], percent: bool = False) -> bool:
    """Whether ``shown`` is a rounding of a value in ``exact``: the intervals meet
    (the table computes from unrounded numbers, so the test allows for each rounding
    it only sees the result of)."""
    low, high = printed(shown, percent)
    slack = 1e-12 * max(1.0, abs(high))  # floating point at the interval ends
    return low - slack <= exact[1] and exact[0] <= high + slack


def test_the_interval_arithmetic_of_the_table():
    """The case that failed by chance: a rate that prints as 4,596 images/s times 7.08 M
    FLOPs an image prints as 32.6 GFLOP/s when the unrounded numbers say so, although
    the rounded ones give 32.54."""
    gflops = quotient(product(printed("4,596"), printed("7.08")), (1e3, 1e3))
    assert printed("4,596") == (4595.5, 4596.5)
    assert consistent("32.6", gflops) and consistent("32.5", gflops)
    assert not consistent("32.7", gflops) and not consistent("32.4", gflops)
    assert consistent("12%", (0.1240, 0.1245), percent=True)
    assert not consistent("13%", (0.1240, 0.1245), percent=True)


def test_quick_bench_prints_a_consistent_table_with_the_ratios_last():
    """Every number of the table is what its rounded inputs allow: the speeds are
    measured, so only the arithmetic between them is checked, to the printed digits."""
    lines = bench.run(quick=True)
    rows = {
        match["name"].split(" (")[0]: match for match in map(ROW.match, lines) if match
    }
    assert list(rows) == [
        "plain loop",
        "golden trainer",
        "golden sweep",
        "same via a process pool",
        "fused engine",
    ]
    assert f"({bench.QUICK['models']} models, " in lines[6]
    assert f"(Dask, {os.cpu_count()} x 1 thread)" in lines[4]
    ceiling = re.match(r"ceiling: .*?\s([\d.]+)\s+100%", lines[7])
    flops = re.search(r"training FLOPs per image: ([\d.]+) M", lines[8])
    assert ceiling and flops
    mega_flops = printed(flops[1])
    plain = printed(rows["plain loop"]["rate"])
    for match in rows.values():
        rate = printed(match["rate"])
        assert rate[1] > 0
        gflops = quotient(product(rate, mega_flops), (1e3, 1e3))
        assert consistent(match["gflops"], gflops), match[0]
        share = quotient(gflops, printed(ceiling[1]))
        assert consistent(match["share"] + "%", share, percent=True), match[0]
        assert consistent(match["ratio"], quotient(rate, plain)), match[0]
    single, sweep, together = (
        rows[name]["ratio"]
        for name in ("golden trainer", "golden sweep", "fused engine")
    )
    assert lines[-4].startswith(f"single run: {single}x the plain loop")
    assert lines[-3].startswith(f"sweep: {sweep}x the plain loop")
    assert lines[-2].startswith(f"fused engine: {together}x the plain loop")
    dask, pool = (
        printed(rows[name]["rate"])
        for name in ("golden sweep", "same via a process pool")
    )
    engine = re.match(r"Dask runner / process pool: ([\d.]+)x", lines[-1])
    assert engine and consistent(engine[1], quotient(dask, pool))


def test_the_device_report_runs_its_gpu_path_on_the_cpu():
    """`bench --device cuda`'s code on the CPU: images/s, the TFLOP/s they make with
    the FLOPs per image, and the projected time of both paper grids."""
    lines = bench.device_report("cpu", quick=True)
    assert lines[0].startswith("golden bench on cpu: the fused engine, fp32 (no TF32)")
    found = re.match(
        r"2 models at once \(1 x 2\): ([\d,]+) trained images/s, "
        r"([\d.]+) TFLOP/s$",
        lines[1],
    )
    assert found, lines[1]
    flops = bench.training_flops_per_image()
    tflops = quotient(product(printed(found[1]), (flops, flops)), (1e12, 1e12))
    assert consistent(found[2], tflops)
    assert [line.split(" grid (")[0] for line in lines[2:]] == [
        "projected paper",
        "projected paper_half",
    ]
    assert all("600 runs of 30 epochs, evaluation included):" in x for x in lines[2:])
