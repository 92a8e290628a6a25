#!/bin/sh
# Basic-auth reverse proxy in front of the model server (compose service `serve-proxy`, caddy image): refuses
# the example password, hashes SERVE_PASSWORD (bcrypt) at start, writes the Caddyfile and runs caddy. /ping is
# open (health checks); everything else needs SERVE_USERNAME / SERVE_PASSWORD. The model server is not published.
set -eu

: "${SERVE_USERNAME:?set SERVE_USERNAME in docker/.env}"
: "${SERVE_PASSWORD:?set SERVE_PASSWORD in docker/.env}"
/bin/sh /usr/local/bin/check-secrets.sh SERVE_PASSWORD
SERVE_PASSWORD_HASH=$(caddy hash-password --plaintext "$SERVE_PASSWORD")
export SERVE_PASSWORD_HASH
UPSTREAM="${SERVE_UPSTREAM:-serve:5001}"
config=/tmp/Caddyfile
cat > "$config" <<CADDY
{
	admin off
}

:8080 {
	request_body {
		max_size ${SERVE_MAX_BYTES:-67108864}
	}
	handle /ping {
		reverse_proxy ${UPSTREAM}
	}
	handle {
		basic_auth {
			{\$SERVE_USERNAME} {\$SERVE_PASSWORD_HASH}
		}
		reverse_proxy ${UPSTREAM}
	}
}
CADDY
exec caddy run --config "$config" --adapter caddyfile
