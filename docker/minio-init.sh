#!/bin/sh
# One-shot MinIO setup (minio/mc image): buckets for MLflow artifacts and the DVC remote, and a non-root
# service account (readwrite policy) used by MLflow, the Prefect worker and CI. Safe to re-run.
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${S3_ACCESS_KEY_ID:?}" "${S3_SECRET_ACCESS_KEY:?}"
MLFLOW_BUCKET="${MLFLOW_BUCKET:-mlflow}"
DVC_BUCKET="${DVC_BUCKET:-dvc}"

mc alias set local "${MINIO_URL:-http://minio:9000}" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "local/${MLFLOW_BUCKET}" "local/${DVC_BUCKET}"
mc anonymous set none "local/${MLFLOW_BUCKET}"
mc anonymous set none "local/${DVC_BUCKET}"
# Creating an existing user updates its secret key, so rotating S3_SECRET_ACCESS_KEY in .env works.
mc admin user add local "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY"
# Attaching a policy that is already attached is an error in mc; that state is what we want.
mc admin policy attach local readwrite --user "$S3_ACCESS_KEY_ID" || echo "readwrite policy already attached"
echo "buckets ${MLFLOW_BUCKET}, ${DVC_BUCKET} and user ${S3_ACCESS_KEY_ID} are ready"
