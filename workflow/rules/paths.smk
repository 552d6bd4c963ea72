# Output paths that more than one rule file names (one place per path). A rule file's own
# private paths stay beside its rules; targets come from `rules.<name>.output`.
KEYFRAMES = "results/keyframes/keyframes.h5"
SPLIT = "results/splits/fold{fold}/seed{seed}.json"
RUN_DIR = "results/runs/fold{fold}/seed{seed}"
CYCLES = f"{RUN_DIR}/{{strategy}}/cycles.csv"
STOPPING = (
    f"{RUN_DIR}/{{strategy}}/stopping.csv"  # what the stopping rules read, per cycle
)
FULL_METRICS = f"{RUN_DIR}/full/metrics.csv"
TABLE1 = "results/tables/table1.csv"
# Written by rule report_front, included by workflow/report/workflow.rst (path from the workdir).
FRONT_PAGE = "results/report/front.rst"
