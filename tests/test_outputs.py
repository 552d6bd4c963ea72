"""The output layout (alnsfw.outputs) is the one the caches and the integrity check use.

Why: these paths used to be typed in the rule files, the cache settings and the integrity check
separately; a file named by one and not recognised by another would be rebuilt by the wrong rule
or not at all.
"""

from __future__ import annotations

from alnsfw import outputs
from alnsfw.integrity import rebuild_command
from alnsfw.model.tags import feature_files, proxy_weights_file
from alnsfw.schema import schema_defaults


def demo_config(**overrides: object) -> dict:
    cfg = {name: schema_defaults(name) for name in ("model", "training", "compute", "pretrain")}
    cfg["model"] = cfg["model"] | {"weights": "proxy", "input_size": 64}
    cfg["training"] = cfg["training"] | {"augment": "bank"}
    cfg["compute"] = cfg["compute"] | {"feature_cache": True}
    return cfg | overrides


def test_cache_files_follow_the_layout_and_name_their_rule():
    cfg = demo_config()
    files = feature_files(cfg)
    assert set(files) == {"features", "bank"}
    assert outputs.output_regex(outputs.FEATURES).search(files["features"])
    assert outputs.output_regex(outputs.BANK).search(files["bank"])
    assert "cache_features" in rebuild_command(files["bank"])  # one job writes both
    assert "cache_features" in rebuild_command(f"/work/dir/{files['features']}")
    assert "pretrain_trunk" in rebuild_command(proxy_weights_file(cfg))


def test_keyframe_files_name_their_rule_or_path():
    assert "merge_keyframes" in rebuild_command(outputs.KEYFRAMES)
    # a shard's job is extract_keyframes or extract_keyframes_<n> (compute.keyframe_jobs): by path
    shard = outputs.KEYFRAME_SHARD.format(video="vPorn1")
    assert f"snakemake --force {shard}," in rebuild_command(f"/work/dir/{shard}")


def test_a_path_outside_the_layout_is_deleted_and_rerun():
    assert rebuild_command("elsewhere/features.h5").startswith("delete")


def test_run_files():
    assert outputs.CYCLES == "results/runs/fold{fold}/seed{seed}/{strategy}/cycles.csv"
    assert outputs.FULL_METRICS == "results/runs/fold{fold}/seed{seed}/full/metrics.csv"
