#!/bin/sh
# Refuse to start with the example secrets of docker/.env.example (any value still containing "change-me")
# or with an empty or short one. Checks the variables named as arguments, or every *PASSWORD*, *SECRET*,
# *AUTH_STRING* and *_KEY variable of the environment when none are named. Exits 1 naming the variables (never
# printing their values), so `docker compose up` stops before any service runs with a guessable password.
set -eu

min_len="${SECRETS_MIN_LENGTH:-12}"
if [ "$#" -gt 0 ]; then
    names="$*"
else
    names=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | grep -E 'PASSWORD|SECRET|AUTH_STRING|_KEY$' || true)
fi
bad=""
for name in $names; do
    value=$(printenv "$name" || true)
    case "$value" in
        *change-me*) bad="$bad $name(example value)" ;;
        "") bad="$bad $name(empty)" ;;
        *)
            if [ "${#value}" -lt "$min_len" ]; then
                bad="$bad $name(shorter than $min_len characters)"
            fi
            ;;
    esac
done
if [ -n "$bad" ]; then
    echo "refusing to start: replace these secrets in docker/.env (e.g. openssl rand -hex 24):$bad" >&2
    exit 1
fi
echo "secrets check passed"
