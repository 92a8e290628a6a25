#!/bin/sh
# Serve the registered model "models:/$MODEL_NAME@$MODEL_ALIAS" from the MLflow registry at
# $MLFLOW_TRACKING_URI (credentials, if any, in MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD).
# --env-manager local: the image already holds the model's environment; nothing is installed at start.
set -eu

: "${MLFLOW_TRACKING_URI:?set MLFLOW_TRACKING_URI to the MLflow tracking server, e.g. http://mlflow:5000}"
: "${MODEL_NAME:?set MODEL_NAME to a registered model, e.g. ms2img-DPPH}"
MODEL_ALIAS="${MODEL_ALIAS:-champion}"
SERVE_PORT="${SERVE_PORT:-5001}"
SERVE_WORKERS="${SERVE_WORKERS:-1}"
SERVE_TIMEOUT="${SERVE_TIMEOUT:-60}"

echo "serving models:/${MODEL_NAME}@${MODEL_ALIAS} from ${MLFLOW_TRACKING_URI} on port ${SERVE_PORT}"
exec mlflow models serve \
    -m "models:/${MODEL_NAME}@${MODEL_ALIAS}" \
    --env-manager local \
    -h 0.0.0.0 \
    -p "${SERVE_PORT}" \
    -w "${SERVE_WORKERS}" \
    -t "${SERVE_TIMEOUT}" \
    "$@"
