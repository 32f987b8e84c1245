"""Checks of golden.bench: its FLOP count by hand, and its quick mode (what CI can
afford) end to end.

The quick run loads the real MNIST files (the plain loop goes through torchvision) and
spawns one process per core; it checks the table's arithmetic, never a speed.
"""

from __future__ import annotations

import os
import re

import pytest

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


def test_quick_bench_prints_a_consistent_table_with_the_ratios_last():
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
    plain = float(rows["plain loop"]["rate"].replace(",", ""))
    flops = float(re.search(r"training FLOPs per image: ([\d.]+) M", lines[8])[1]) * 1e6
    for match in rows.values():
        rate = float(match["rate"].replace(",", ""))
        assert rate > 0
        # the table rounds rates to whole images/s: allow for that in the ratio it
        # prints
        rounding = rate / plain * (0.5 / rate + 0.5 / plain)
        assert float(match["ratio"]) == pytest.approx(
            rate / plain, abs=0.006 + rounding
        )
        assert float(match["gflops"]) == pytest.approx(rate * flops / 1e9, abs=0.06)
    single, sweep, together = (
        float(rows[name]["ratio"])
        for name in ("golden trainer", "golden sweep", "fused engine")
    )
    assert lines[-4].startswith(f"single run: {single:.2f}x the plain loop")
    assert lines[-3].startswith(f"sweep: {sweep:.2f}x the plain loop")
    assert lines[-2].startswith(f"fused engine: {together:.2f}x the plain loop")
    dask, pool = (
        float(rows[name]["rate"].replace(",", ""))
        for name in ("golden sweep", "same via a process pool")
    )
    engine = re.match(r"Dask runner / process pool: ([\d.]+)x", lines[-1])
    assert engine and float(engine[1]) == pytest.approx(
        dask / pool, abs=0.006 + dask / pool / pool
    )


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
    rate = float(found[1].replace(",", ""))
    assert float(found[2]) == pytest.approx(
        rate * bench.training_flops_per_image() / 1e12, abs=0.006
    )
    assert [line.split(" grid (")[0] for line in lines[2:]] == [
        "projected paper",
        "projected paper_half",
    ]
    assert all("600 runs of 30 epochs, evaluation included):" in x for x in lines[2:])
