#!/usr/bin/env bash
# The GPU check (docs/gpu.md "GPU check"): one command on a GPU machine that has JAX (with CUDA),
# h5py, NumPy, pandas, PyYAML and OpenCV but no TensorFlow and no network.
#
#   benchmarks/gpu_slice.sh --prepare     # here, with network: Keras + its small pure-Python
#                                         # dependencies as wheels into benchmarks/wheels/
#   benchmarks/gpu_slice.sh [ARGS]        # there: installs those wheels into a scratch folder
#                                         # if Keras is missing, then runs benchmarks/gpu_slice.py
#   benchmarks/gpu_slice.sh --dry-run     # tiny sizes on CPU (JAX backend): checks the script
#
# Results go to $OUT (or results/gpu_slice/). ARGS are gpu_slice.py's (--pack, --modes, ...).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELS="$ROOT/benchmarks/wheels"
PYTHON="${PYTHON:-python3}"
# Keras 3.15.1 and what it needs beyond NumPy/h5py/ml_dtypes (which come with JAX).
PINS=(keras==3.15.1 namex==0.1.0 optree==0.20.0 absl-py==2.5.1 rich==15.0.0
      markdown-it-py==4.3.0 mdurl==0.1.2 pygments==2.21.0 packaging==25.0)

if [[ "${1:-}" == "--prepare" ]]; then
    mkdir -p "$WHEELS"
    # optree is compiled: fetch it for each Python the device image may have.
    for v in 3.11 3.12 3.13; do
        "$PYTHON" -m pip download --quiet --only-binary=:all: --no-deps --python-version "$v" \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform manylinux_2_28_x86_64 -d "$WHEELS" "${PINS[@]}"
    done
    ls -l "$WHEELS"
    exit 0
fi

OUT="${OUT:-$ROOT/results/gpu_slice}"
mkdir -p "$OUT"
export OUT KERAS_BACKEND="${KERAS_BACKEND:-jax}"
if ! "$PYTHON" -c "import keras" 2>/dev/null; then
    [[ -d "$WHEELS" ]] || { echo "Keras is missing and $WHEELS does not exist: run '$0 --prepare' where there is network, and bring benchmarks/wheels/ along" >&2; exit 2; }
    SITE="$(mktemp -d)/site"
    missing=()
    for pin in "${PINS[@]}"; do
        mod="${pin%%==*}"; mod="${mod//-/_}"
        case "$mod" in absl_py) mod=absl ;; markdown_it_py) mod=markdown_it ;; esac
        "$PYTHON" -c "import $mod" 2>/dev/null || missing+=("$pin")
    done
    "$PYTHON" -m pip install --quiet --no-index --no-deps --find-links "$WHEELS" --target "$SITE" "${missing[@]}"
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PYTHON" -c "import keras, jax, h5py, cv2, pandas, yaml; print('keras', keras.__version__, 'on', keras.backend.backend(), '| jax', jax.__version__, jax.devices())"
# alnsfw from this checkout (the device machine has no install of it)
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" "$ROOT/benchmarks/gpu_slice.py" --out "$OUT" "$@"
