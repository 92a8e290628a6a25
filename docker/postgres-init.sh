#!/bin/sh
# Runs once, on the first start of an empty PostgreSQL volume (/docker-entrypoint-initdb.d): the image has
# already created $POSTGRES_DB (the MLflow backend store); add the MLflow user store and the Prefect database.
set -eu

for db in "${MLFLOW_AUTH_DB:-mlflow_auth}" "${PREFECT_DB:-prefect}"; do
    echo "creating database ${db}"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        --set=db="$db" --set=owner="$POSTGRES_USER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SQL
done
