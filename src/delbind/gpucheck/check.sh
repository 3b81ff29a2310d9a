#!/usr/bin/env bash
# delbind's offline GPU check: bash check.sh [--out DIR] [--steps N] [--score-molecules N]
# Needs python3 (or $PYTHON) with pip, torch (a CUDA build), transformers, accelerate, peft, tokenizers, safetensors,
# scikit-learn, scipy, pandas, pyarrow, matplotlib, tqdm and PyYAML. No network: the rest is in this folder.
# Writes <out>/check.json and <out>/check.md; exits 1 when a row fails, 2 when the bundle is damaged.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
out="$here/out-$(date +%Y%m%d-%H%M%S)"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if ! (cd "$here" && sha256sum --check --quiet --strict SHA256SUMS); then
  echo "check.sh: $here does not match its SHA256SUMS (a damaged or partial copy): copy the bundle again" >&2
  exit 2
fi
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "check.sh: $out is not empty: give a new --out (no check overwrites another's output)" >&2
  exit 2
fi
mkdir -p "$out"
PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --no-index --no-deps --no-warn-script-location --target "$out/site-packages" "$here"/wheels/*.whl
export PYTHONPATH="$out/site-packages${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled
exec "$python" -m delbind.gpucheck.check --bundle "$here" --out "$out" ${args[@]+"${args[@]}"}
