#!/bin/sh
# Serve the registered model "models:/$MODEL_NAME@$MODEL_ALIAS" from the MLflow registry at
# $MLFLOW_TRACKING_URI (credentials of the read-only account in MLFLOW_TRACKING_USERNAME / _PASSWORD) with
# `ms2img serve`: MLflow's scoring app behind ms2img's guards (byte limit, parse-time guard, 4xx for bad bodies,
# no echoed input), several uvicorn workers. Nothing is installed at start. The container has no auth of its
# own: compose publishes it only through the `serve-proxy` (basic auth); do not publish port 5001 directly.
set -eu

: "${MLFLOW_TRACKING_URI:?set MLFLOW_TRACKING_URI to the MLflow tracking server, e.g. http://mlflow:5000}"
: "${MODEL_NAME:?set MODEL_NAME to a registered model, e.g. ms2img-DPPH}"
/usr/local/bin/check-secrets.sh MLFLOW_TRACKING_PASSWORD
MODEL_ALIAS="${MODEL_ALIAS:-champion}"
SERVE_PORT="${SERVE_PORT:-5001}"
SERVE_WORKERS="${SERVE_WORKERS:-$(nproc)}"
MS2IMG_MAX_BYTES="${MS2IMG_MAX_BYTES:-67108864}"
MS2IMG_MAX_ROWS="${MS2IMG_MAX_ROWS:-200000}"
export MS2IMG_MODEL_URI="models:/${MODEL_NAME}@${MODEL_ALIAS}" MS2IMG_MAX_BYTES MS2IMG_MAX_ROWS

echo "serving ${MS2IMG_MODEL_URI} from ${MLFLOW_TRACKING_URI} on port ${SERVE_PORT} with ${SERVE_WORKERS} workers"
exec python -m uvicorn --factory ms2img.serving.app:app_from_env \
    --host 0.0.0.0 \
    --port "${SERVE_PORT}" \
    --workers "${SERVE_WORKERS}" \
    --timeout-keep-alive 30 \
    --no-access-log \
    "$@"
