# Data stage: (synthetic videos ->) one keyframe shard per video -> keyframes.h5 + manifest ->
# fold/seed splits, and the ingestion report (Table 1, per-fold counts, contact sheet).
from alnsfw.data.folds import precheck  # noqa: E402
from alnsfw.data.layout import (  # noqa: E402
    config_fold_list_paths,
    find_video,
    frame_labels_path,
    video_groups,
)

DATA_ROOT = config["data"]["root"]
FOLD_LISTS = [str(p) for pair in config_fold_list_paths(config).values() for p in pair]
FRAME_LABELS = frame_labels_path(config)
# Only the keys that change a split: adding a seed or fold must not rerun the existing ones.
FOLD_PARAMS = {
    k: config["data"][k] for k in ("root", "test_list", "train_list", "on_missing")
}
SPLIT_PARAMS = {k: config["splits"][k] for k in ("n_folds", "val_fraction", "val_unit")}
CONTACT_SHEET = "results/figures/contact_sheet.png"
# An existing dataset's fold lists are checked now, before any job: an empty test fold stops
# here, and listed-but-absent videos (data.on_missing: warn) are named on the console.
if config["data"]["source"] == "npdi":
    FOLD_NOTE = precheck(config, [v.name for v in VIDEOS])
    if FOLD_NOTE:
        print(FOLD_NOTE, file=sys.stderr)


if config["data"]["source"] == "synthetic":

    rule synthesize_dataset:
        """Generate the synthetic NPDI-like videos, fold lists and frame labels (data.source: synthetic)."""
        output:
            videos=[v.inputs[0] for v in VIDEOS],
            lists=FOLD_LISTS,
            labels=f"{DATA_ROOT}/frame_labels.csv",
        log:
            "results/logs/synthesize_dataset/synthesize_dataset.log",
        conda:
            "../../envs/data.yaml"
        # Videos render in parallel (per-video random streams: the files do not depend on it);
        # nothing else can run until they exist.
        threads: max(2, config["compute"]["threads"])
        resources:
            mem_mb=res("default", "mem_mb"),
            runtime=res("default", "runtime"),
        params:
            root=lambda wc, output: str(Path(output.labels).parent),
            synthetic=config["synthetic"],
            n_folds=config["splits"]["n_folds"],
            # lambdas: the patterns' {fold}/{others} are not wildcards
            test_list=lambda wc: config["data"]["test_list"],
            train_list=lambda wc: config["data"]["train_list"],
        message:
            "Generating the synthetic NPDI-like dataset under {params.root}"
        script:
            "../../scripts/synthesize_dataset.py"


# compute.keyframe_jobs: N > 0 puts the videos into at most N jobs (procedural rules
# extract_keyframes_<group>, groups by a checksum of the name: alnsfw.data.layout.video_groups),
# each writing its videos' shards in one process; 0: one job per video (rule extract_keyframes).
KEYFRAME_JOBS = config["compute"]["keyframe_jobs"]
if KEYFRAME_JOBS:
    for group, members in video_groups(VIDEOS, KEYFRAME_JOBS).items():

        rule:
            """One group of videos' keyframes (compute.keyframe_jobs), each into its shard."""
            name:
                f"extract_keyframes_{group}"
            input:
                [path for video in members for path in video.inputs],
            output:
                [KEYFRAME_SHARD.format(video=video.name) for video in members],
            log:
                f"results/logs/extract_keyframes/group{group}.log",
            conda:
                "../../envs/data.yaml"
            threads: 1
            resources:
                mem_mb=res("default", "mem_mb"),
                runtime=res("default", "runtime"),
            params:
                videos=[
                    {
                        "video": video.name,
                        "video_class": video.video_class,
                        "source": video.source,
                        "inputs": list(video.inputs),
                    }
                    for video in members
                ],
                keyframes=KEYFRAME_PARAMS,
                on_truncated=config["data"]["on_truncated"],
            message:
                f"Keyframes of {len(members)} videos (group {group} of {KEYFRAME_JOBS})"
            script:
                "../../scripts/extract_keyframes.py"

else:

    rule extract_keyframes:
        """One video's keyframes (or its shipped frames), resized, into a shard."""
        input:
            lambda wc: find_video(VIDEOS, wc.video).inputs,
        output:
            KEYFRAME_SHARD,
        log:
            "results/logs/extract_keyframes/{video}.log",
        conda:
            "../../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=res("default", "mem_mb"),
            runtime=res("default", "runtime"),
        params:
            video_class=lambda wc: find_video(VIDEOS, wc.video).video_class,
            source=lambda wc: find_video(VIDEOS, wc.video).source,
            keyframes=KEYFRAME_PARAMS,
            on_truncated=config["data"]["on_truncated"],
        message:
            "Keyframes of {wildcards.video}"
        script:
            "../../scripts/extract_keyframes.py"


rule merge_keyframes:
    """All shards into keyframes.h5 and manifest.csv, with the per-frame labels applied."""
    input:
        shards=expand(KEYFRAME_SHARD, video=[v.name for v in VIDEOS]),
        labels=[str(FRAME_LABELS)] if FRAME_LABELS else [],
    output:
        h5=KEYFRAMES,
        manifest=MANIFEST,
    log:
        "results/logs/merge_keyframes/merge_keyframes.log",
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        on_missing=config["data"]["on_missing"],
    message:
        "Merging {n} keyframe shards into {{output.h5}}".format(n=len(VIDEOS))
    script:
        "../../scripts/merge_keyframes.py"


rule make_splits:
    """Pool, validation and test rows of one fold and seed."""
    input:
        manifest=MANIFEST,
        lists=FOLD_LISTS,
    output:
        SPLIT,
    log:
        "results/logs/make_splits/fold{fold}-seed{seed}.log",
    priority: 10  # a second's work each: the training jobs of every seed can then be picked
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        data=FOLD_PARAMS,
        splits=SPLIT_PARAMS,
    message:
        "Split of fold {wildcards.fold}, seed {wildcards.seed}"
    script:
        "../../scripts/make_splits.py"


rule ingest_report:
    """Table 1, per-fold counts and the contact sheet of what was ingested."""
    input:
        keyframes=KEYFRAMES,
        manifest=MANIFEST,
        splits=expand(SPLIT, fold=FOLDS, seed=SEEDS),
        lists=FOLD_LISTS,
    output:
        table1_csv=report(
            TABLE1,
            caption="../report/table1.rst",
            category=CATEGORY["data"],
        ),
        table1_md=f"{TABLES}/table1.md",
        folds_csv=report(
            f"{TABLES}/folds.csv",
            caption="../report/folds.rst",
            category=CATEGORY["data"],
        ),
        folds_md=f"{TABLES}/folds.md",
        # report.contact_sheet: false keeps the dataset's images out of a shared report
        contact_sheet=(
            report(
                CONTACT_SHEET,
                caption="../report/contact_sheet.rst",
                category=CATEGORY["data"],
            )
            if config["report"]["contact_sheet"]
            else CONTACT_SHEET
        ),
    log:
        "results/logs/ingest_report/ingest_report.log",
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        data=FOLD_PARAMS,
        n_folds=config["splits"]["n_folds"],
    message:
        "Table 1, per-fold counts and contact sheet of the ingested keyframes"
    script:
        "../../scripts/ingest_report.py"


TARGETS += expand(SPLIT, fold=FOLDS, seed=SEEDS) + [
    MANIFEST,
    TABLE1,
    f"{TABLES}/table1.md",
    f"{TABLES}/folds.csv",
    f"{TABLES}/folds.md",
    CONTACT_SHEET,
]
