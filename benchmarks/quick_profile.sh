#!/usr/bin/env bash
# The quick profile on a 200-accession synthetic cohort, all four assays: CNN and baseline AUC (mean ± SD over
# grouped folds) and wall time. Usage: bash benchmarks/quick_profile.sh [WORK_DIR]   (needs `make install`)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/ms2img-quick-profile}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
cp "$repo/params.yaml" .
export PATH="$repo/.venv/bin:$PATH" MLFLOW_TRACKING_URI="sqlite:///$work/mlflow.db" TF_CPP_MIN_LOG_LEVEL=3
start=$(date +%s)
ms2img synth --accessions 200 --seed 42 --out data/raw > log_synth.txt
ms2img ingest data/raw/exports --out data/events > log_ingest.txt
ms2img validate data/events --assays data/raw/assays.csv > log_validate.txt
ms2img render data/events --sizes --out-dir data/images > log_render.txt 2>&1
ms2img features data/events --out data/features > log_features.txt 2>&1
prep=$(date +%s); echo "prep seconds: $((prep-start))"
for a in DPPH elastase TFC TPC; do
  s=$(date +%s)
  ms2img train --assay $a --profile quick 2>&1 | grep -E "^[A-Za-z]+: CNN"
  ms2img baselines --assay $a --profile quick 2>&1 | grep -E "^[A-Za-z]+ (rf|OPLS)"
  echo "$a seconds: $(( $(date +%s) - s ))"
done
echo "total seconds: $(( $(date +%s) - start ))"
