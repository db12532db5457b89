#!/usr/bin/env bash
# The GPU figures issues 12 and 13 ask for, in one call on a lent GPU machine (docs/gpu.md).
#
#   bash benchmarks/gpu_evidence.sh [OUT] [STEP ...]
#
# Run from the repository root, with CUDA torch, CUDA JAX and triton installed (no nox, no
# network needed). Steps run in the order given (default: all, most wanted first), each
# under its own time cap, and none starts once EVIDENCE_BUDGET_S seconds (default 540) are
# spent, so the call ends in time and keeps what finished. Everything lands under OUT
# (default $OUT, else evidence/): one log per step, the result files, and evidence.tar.gz
# holding them all (a device call brings back at most 8 files).
#
# Steps: env gpu-tests certify-cold certify-warm vs-cudnn bench report
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-evidence}}
shift || true
steps=("$@")
all=(env gpu-tests certify-cold certify-warm vs-cudnn bench report)
((${#steps[@]})) || steps=("${all[@]}")
for s in "${steps[@]}"; do
  [[ " ${all[*]} " == *" $s "* ]] || { echo "unknown step $s (steps: ${all[*]})" >&2; exit 2; }
done
budget=${EVIDENCE_BUDGET_S:-540}
mkdir -p "$out"
: >"$out/summary.txt"
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false TF_FORCE_GPU_ALLOW_GROWTH=true
unset TRITON_INTERPRET
# cold: both caches of the Triton op empty (the tile choices and the compiled kernels)
export CONVCERT_TRITON_CACHE="$out/cache/tiles" TRITON_CACHE_DIR="$out/cache/kernels"
machine=$(python3 -c "import torch; print(torch.cuda.get_device_name().split()[-1].lower() \
  if torch.cuda.is_available() else 'no-gpu')" 2>/dev/null || echo no-torch)
start=$SECONDS

step() {  # step NAME CAP_S COMMAND...: run it under its cap, log it, print one line
  local name=$1 cap=$2 began=$SECONDS rc
  shift 2
  if ((SECONDS - start + 5 > budget)); then
    echo "$name: not started, ${budget}s budget spent" | tee -a "$out/summary.txt"
    return
  fi
  ((cap > budget - (SECONDS - start))) && cap=$((budget - (SECONDS - start)))
  timeout --kill-after=10 "$cap" "$@" >"$out/$name.log" 2>&1
  rc=$?
  echo "$name: exit $rc in $((SECONDS - began)) s (cap ${cap} s): $*" | tee -a "$out/summary.txt"
  tail -n 3 "$out/$name.log" | sed 's/^/    /' | tee -a "$out/summary.txt"
}

for s in "${steps[@]}"; do
  case $s in
    env) step env 60 bash -c "nvidia-smi; python3 -m implementations; python3 -c \
      'import torch, triton, jax; print(torch.__version__, torch.version.cuda, \
      torch.backends.cudnn.version(), triton.__version__, jax.__version__, jax.devices())'" ;;
    gpu-tests) step gpu-tests 150 python3 -m pytest -q -p no:cacheprovider -rs -m gpu \
      tests/benchmarks/test_gpu.py tests/triton/test_triton_tuning_on_gpu.py tests/adapters ;;
    certify-cold) rm -rf "$out/cache"
      step certify-cold 180 python3 -m conformance certify triton --device cuda \
      --no-progress --out "$out/certify-cold" ;;
    certify-warm) step certify-warm 150 python3 -m conformance certify triton --device cuda \
      --no-progress --out "$out/certify-warm" ;;
    vs-cudnn) step vs-cudnn 200 python3 -m benchmarks triton-vs-cudnn --out "$out/vs-cudnn" \
      --dtypes float16 bfloat16 float32 --rounds 30 --warmup 3 ;;
    bench) step bench 200 python3 -m benchmarks run --profile gpu --machine "$machine" \
      --impl torch jax triton --dtype float16 --out "$out/results" -- -k "resnet50 and b64" ;;
    report) step report 60 python3 -m reports --results "$out/results" --out "$out/report" ;;
  esac
done
echo "machine $machine, $((SECONDS - start)) s in all" | tee -a "$out/summary.txt"
pack=$(mktemp)  # outside $out: tar must not read the archive it writes
tar -czf "$pack" --exclude=./cache --exclude=./evidence.tar.gz -C "$out" . && chmod 644 "$pack" && mv "$pack" "$out/evidence.tar.gz"
