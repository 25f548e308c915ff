#!/usr/bin/env bash
# GPU check (issue 12, item 8): one short run on a machine with CUDA (the `device` tool's H200).
#
#   here, once:   make gpu-wheels      # the packages the device image lacks, into .whl/ (~43 MB)
#   device run:   command "bash benchmarks/gpu/check.sh", carry [".whl"], timeout_s 540
#
# The device image has python3 with torch (CUDA), torch-geometric, botorch, scipy, pytest; the
# wheels add ase, rdkit, SQLAlchemy, alembic, pydantic. The package is not installed there:
# alloop.<package> is linked to the checkout's folders. Writes gpu_check.{json,md} and the logs
# to $OUT (the device tool brings them back), or to ./gpu-out elsewhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/alloop-site .whl/*.whl
  export PYTHONPATH=/tmp/alloop-site${PYTHONPATH:+:$PYTHONPATH}
fi
SRC=/tmp/alloop-src
rm -rf "$SRC" && mkdir -p "$SRC/alloop"
for p in loop surrogate oracles store; do ln -s "$PWD/$p" "$SRC/alloop/$p"; done
export PYTHONPATH=$SRC:$PWD:$PYTHONPATH PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia_smi.txt" || true
python3 benchmarks/gpu/check.py --out "$OUT" 2>&1 | tee "$OUT/gpu_check.log"
python3 -m pytest -q -m gpu -p no:cacheprovider tests/surrogate/test_gpu.py 2>&1 \
  | tee "$OUT/gpu_tests.log"
