"""benchmarks/bench_phases.py's summary arithmetic, on hand-made timings (no Keras, no model).

Each phase is timed R times with the paths interleaved; the report gives per (path, phase) the
median rate with its spread, and each speed-up over naive as the median of per-repeat ratios.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_bench():
    spec = importlib.util.spec_from_file_location(
        "bench_phases", ROOT / "benchmarks" / "bench_phases.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timings(path: str, phase: str, images: int, seconds: list[float]) -> list[dict]:
    return [
        {"path": path, "phase": phase, "repeat": r, "images": images, "seconds": s}
        for r, s in enumerate(seconds)
    ]


def by_key(rows: list[dict]) -> dict:
    return {(r["path"], r["phase"]): r for r in rows}


def test_rates_report_median_min_max_and_iqr():
    bench = load_bench()
    # 100 images in 1, 2, 0.5, 0.25, 4 s: rates 100, 50, 200, 400, 25.
    raw = timings("naive", "score_pool", 100, [1.0, 2.0, 0.5, 0.25, 4.0])
    phases, ratios = bench.summarise(raw)
    row = by_key(phases)[("naive", "score_pool")]
    assert row["images_per_s"] == pytest.approx(100.0)
    assert row["images_per_s_min"] == pytest.approx(25.0)
    assert row["images_per_s_max"] == pytest.approx(400.0)
    assert row["images_per_s_q1"] == pytest.approx(50.0)
    assert row["images_per_s_q3"] == pytest.approx(200.0)
    assert row["seconds"] == pytest.approx(1.0)  # the median time
    assert row["repeats"] == 5 and row["images"] == 100
    assert ratios == []  # the reference has no ratio to itself


def test_ratio_is_the_median_of_per_repeat_ratios():
    bench = load_bench()
    # naive: 100 images/s every repeat; online: 500, 600, 700, 800, 900 -> ratios 5..9.
    raw = timings("naive", "test", 100, [1.0] * 5)
    raw += timings("online", "test", 100, [100 / v for v in (500, 600, 700, 800, 900)])
    _, ratios = bench.summarise(raw)
    row = by_key(ratios)[("online", "test")]
    assert row["ratio"] == pytest.approx(7.0)
    assert (row["ratio_min"], row["ratio_max"]) == pytest.approx((5.0, 9.0))
    assert (row["ratio_q1"], row["ratio_q3"]) == pytest.approx((6.0, 8.0))
    assert row["pairs"] == 5


def test_ratios_pair_timings_of_the_same_repeat():
    """Load drift that slows both sides of a repeat alike cancels in the paired ratio, while
    the rates themselves spread 4x; an unpaired min/max would claim ratios from 2.5x to 40x."""
    bench = load_bench()
    raw = timings("naive", "train_epoch", 100, [1.0, 2.0, 4.0])  # 100, 50, 25 images/s
    raw += timings("bank", "train_epoch", 100, [0.1, 0.2, 0.4])  # 1000, 500, 250 images/s
    phases, ratios = bench.summarise(raw)
    bank = by_key(phases)[("bank", "train_epoch")]
    assert (bank["images_per_s_min"], bank["images_per_s_max"]) == pytest.approx((250, 1000))
    row = by_key(ratios)[("bank", "train_epoch")]
    assert (row["ratio"], row["ratio_min"], row["ratio_max"]) == pytest.approx((10, 10, 10))


def test_a_repeat_without_its_reference_is_left_out_of_the_ratio():
    bench = load_bench()
    raw = timings("naive", "test", 10, [1.0, 1.0])  # repeats 0, 1
    raw += timings("none", "test", 10, [0.5, 0.25, 0.01])  # repeat 2 has no naive partner
    phases, ratios = bench.summarise(raw)
    assert by_key(phases)[("none", "test")]["repeats"] == 3
    row = by_key(ratios)[("none", "test")]
    assert row["pairs"] == 2
    assert row["ratio"] == pytest.approx(3.0)  # median of 2 and 4
    assert (row["ratio_min"], row["ratio_max"]) == pytest.approx((2.0, 4.0))


def test_phases_are_timed_round_robin():
    """Repeat r times every path once before repeat r + 1; a phase stops after its repeats."""
    bench = load_bench()
    calls = []

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def time(self, phase: str) -> dict:
            calls.append((self.name, phase))
            return {"path": self.name, "phase": phase, "images": 10, "seconds": 0.1}

    plan = {"naive": ["train_epoch", "test"], "bank": ["train_epoch"]}
    variants = {name: Fake(name) for name in plan}
    raw = bench.run_interleaved(variants, plan, {"train_epoch": 1, "score_pool": 2, "test": 2})
    assert calls == [
        ("naive", "train_epoch"),
        ("bank", "train_epoch"),
        ("naive", "test"),
        ("naive", "test"),
    ]
    assert [r["repeat"] for r in raw] == [0, 0, 0, 1]


def test_whole_run_speedups_are_paired_by_seed():
    spec = importlib.util.spec_from_file_location(
        "bench_al_run", ROOT / "benchmarks" / "bench_al_run.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    import pandas as pd

    table = pd.DataFrame(
        {
            "mode": ["naive-online", "bank", "naive-online", "bank", "bank"],
            "seed": [0, 0, 1, 1, 2],  # seed 2 has no naive-online run: left out
            "wall_seconds": [60.0, 10.0, 120.0, 40.0, 1.0],
        }
    )
    out = bench.seed_speedups(table)
    assert out.loc["bank", "speedup_seed_median"] == pytest.approx(4.5)  # of 6 and 3
    assert out.loc["bank", "speedup_seed_min"] == pytest.approx(3.0)
    assert out.loc["bank", "speedup_seed_max"] == pytest.approx(6.0)
    assert out.loc["naive-online", "speedup_seed_median"] == pytest.approx(1.0)
