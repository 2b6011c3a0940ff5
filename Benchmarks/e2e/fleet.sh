#!/usr/bin/env bash
# Fleet benchmark: replicas sharing tokens through PostgreSQL ([token_store]). Loopback only; every
# process it starts is stopped on exit, the throwaway PostgreSQL cluster removed.
#
#   Benchmarks/e2e/fleet.sh              # release build, 3 replicas, burst of 300, 300 users
#   NO_BUILD=1 REPLICAS=3 BURST=300 USERS=300 Benchmarks/e2e/fleet.sh
#
# Prints, as Markdown for BENCHMARKS.md:
#   - a cold burst of BURST concurrent callouts for one principal spread over the replicas, and the
#     identity provider exchanges it cost (the static nginx token endpoint's access-log lines);
#   - the latency a store hit adds to a callout against a local cache hit (fleet_latency.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/Benchmarks/e2e"
# shellcheck source=common.sh
source "$HERE/common.sh"
REPLICAS="${REPLICAS:-3}"
BURST="${BURST:-300}"
USERS="${USERS:-300}"
BIN="${BIN:-$ROOT/.build/release/callout-proxy}"
log() { printf '[fleet %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ -z "${NO_BUILD:-}" ]; then
    log "swift build -c release"
    (cd "$ROOT" && swift build -c release --product callout-proxy >&2)
fi
[ -x "$BIN" ] || { echo "missing $BIN (build with: swift build -c release)" >&2; exit 1; }

W="$(mktemp -d /tmp/callout-fleet.XXXXXX)"
chmod 755 "$W"
PIDS=()
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    [ -d "$W/pg" ] && as_postgres "$PGBIN/pg_ctl" -D "$W/pg" -m immediate stop >/dev/null 2>&1 || true
    sleep 0.5
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

UP=$(free_port); IDP=$(free_port); PG=$(free_port)
log "certificates, nginx upstream and token endpoint, PostgreSQL on :$PG"
make_certificates "$W"
cat >"$W/backend.conf" <<EOF
worker_processes 1;
daemon off;
pid $W/backend.pid;
error_log $W/backend-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    ssl_certificate $W/leaf.pem;
    ssl_certificate_key $W/leaf.key;
    client_body_temp_path $W/tmp-body; proxy_temp_path $W/tmp-proxy;
    fastcgi_temp_path $W/tmp-fcgi; uwsgi_temp_path $W/tmp-uwsgi; scgi_temp_path $W/tmp-scgi;
    server {
        listen 127.0.0.1:$UP ssl;
        location / { default_type text/plain; return 200 "hello from the upstream\n"; }
    }
    server {
        listen 127.0.0.1:$IDP ssl;
        location = /token {
            access_log $W/idp-access.log;
            default_type application/json;
            return 200 '{"access_token":"bench-token-\$request_id","token_type":"Bearer","expires_in":3600}';
        }
    }
}
EOF
"$NGINX" -c "$W/backend.conf" -p "$W" -e "$W/backend-error.log" &
PIDS+=($!)
PASSWORD=$(openssl rand -hex 16)
echo "$PASSWORD" >"$W/pw"
[ "$(id -u)" = 0 ] && chown postgres "$W/pw" && mkdir -p "$W/pg" && chown postgres "$W/pg"
as_postgres "$PGBIN/initdb" -D "$W/pg" -U callout --pwfile="$W/pw" --auth=scram-sha-256 --no-sync >/dev/null
as_postgres "$PGBIN/pg_ctl" -D "$W/pg" -l "$W/pg/server.log" -w \
    -o "-p $PG -k $W/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
wait_port "$UP" 10; wait_port "$IDP" 10
touch "$W/idp-access.log"

export CALLOUT_TOKEN_STORE_KEY="$(openssl rand -base64 32)" CALLOUT_TOKEN_STORE_PASSWORD="$PASSWORD"
PORTS=()
for ((r = 0; r < REPLICAS; r++)); do
    port=$(free_port)
    PORTS+=("$port")
    cat >"$W/proxy-$r.conf" <<EOF
[proxy]
listen = "127.0.0.1:$port"
admin_listen = "off"
ca_file = "$W/ca.pem"
request_timeout_seconds = 60
connect_timeout_seconds = 30

[token_store]
url = "postgresql://callout@127.0.0.1:$PG/postgres"
password_env = "CALLOUT_TOKEN_STORE_PASSWORD"
encryption_key_env = "CALLOUT_TOKEN_STORE_KEY"
tls = "disable"
timeout_ms = 2000

[[certificate]]
name = "Bench_Signing"
private_key_file = "$W/signing.key"
certificate_file = "$W/signing.crt"

[[external_credential]]
name = "Burst_API"
identity_provider_url = "https://127.0.0.1:$IDP/token"
signing_certificate = "Bench_Signing"
scope = "burst"
  [[external_credential.principal]]
  name = "Burst"
  sequence_number = 1
  client_id = "burst"
  permission_sets = ["Bench"]

[[external_credential]]
name = "Users_API"
identity_provider_url = "https://127.0.0.1:$IDP/token"
signing_certificate = "Bench_Signing"
scope = '{!"user:" & \$User.Id}'
  [[external_credential.principal]]
  name = "PerUser"
  sequence_number = 1
  client_id = "per-user"
  permission_sets = ["Bench"]

[[named_credential]]
name = "Burst"
url = "https://127.0.0.1:$UP"
external_credential = "Burst_API"

[[named_credential]]
name = "Users"
url = "https://127.0.0.1:$UP"
external_credential = "Users_API"
EOF
    "$BIN" serve --config "$W/proxy-$r.conf" --log-level warning >"$W/proxy-$r.log" 2>&1 &
    PIDS+=($!)
done
for port in "${PORTS[@]}"; do wait_port "$port" 30; done
sleep 1
idp_calls() { wc -l <"$W/idp-access.log" | tr -d ' '; }

log "cold burst: $BURST concurrent callouts for one principal over $REPLICAS replicas"
per=$((BURST / REPLICAS))
before=$(idp_calls)
BURST_PIDS=()
for ((r = 0; r < REPLICAS; r++)); do
    timeout 120 python3 "$HERE/burst.py" burst --port "${PORTS[$r]}" --path /callout:Burst/ -n "$per" \
        -H 'X-Callout-Permission-Sets: Bench' >"$W/burst-$r.out" 2>&1 &
    BURST_PIDS+=($!)
done
for pid in "${BURST_PIDS[@]}"; do wait "$pid" || true; done
sleep 0.5
BURST_IDP=$(( $(idp_calls) - before ))
BURST_OUT=$(cat "$W"/burst-*.out | tr '\n' ' ')
log "burst: $BURST_OUT -> IdP exchanges: $BURST_IDP"

log "latency: a store hit against a local hit ($USERS users, replicas 0 and 1)"
LAT=$(timeout 300 python3 "$HERE/fleet_latency.py" --a "${PORTS[0]}" --b "${PORTS[1]}" -n "$USERS")
log "$LAT"
USERS_IDP=$(( $(idp_calls) - before - BURST_IDP ))

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$LAT"; }
cat <<EOF
| measure | result |
|---|---|
| cold burst: $BURST concurrent callouts, one principal, $REPLICAS replicas | identity provider exchanges: **$BURST_IDP** ($BURST_OUT) |
| $USERS users, each fetched by one replica and then called through another | exchanges: $USERS_IDP (one per user) |
| callout with a store hit (p50 / p90) | $(field store_hit_p50_ms) / $(field store_hit_p90_ms) ms |
| callout with a local cache hit (p50 / p90) | $(field local_hit_p50_ms) / $(field local_hit_p90_ms) ms |
| latency a store hit adds (p50) | **$(field added_p50_ms) ms** |
EOF
