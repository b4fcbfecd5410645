#!/usr/bin/env bash
# The benchmark report on a fresh NVIDIA GPU machine, in one command (about 5-8 minutes):
#
#     bash bench/gpu.sh            # then read bench/results/gpu.md (and .json, .png)
#
# Shows the GPU, installs scratchflow with TensorFlow's CUDA wheels, checks that TensorFlow
# sees the GPU (else the report would quietly measure the CPU), then runs the full report.
# Extra arguments go to the report, e.g. `bash bench/gpu.sh --quick --out /tmp/gpu`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
start=$SECONDS

nvidia-smi

"$PYTHON" -m pip install --quiet --progress-bar off -e ".[and-cuda]"

# Fashion-MNIST from Debian's package when apt can get it; otherwise engine.data.loading downloads it with TFDS.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; } \
    || echo "apt-get could not install dataset-fashion-mnist; the report will try TFDS"
fi

TF_CPP_MIN_LOG_LEVEL=2 "$PYTHON" -c '
import sys, tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print("TensorFlow", tf.__version__, "sees", gpus or "no GPU")
sys.exit(0 if gpus else "no GPU visible to TensorFlow: compare the nvidia-smi driver above with the CUDA version tensorflow[and-cuda] needs")
'

TF_CPP_MIN_LOG_LEVEL=2 "$PYTHON" -m bench.report --out bench/results "$@"
echo "bench/gpu.sh done in $((SECONDS - start)) s"
