#!/usr/bin/env bash
# End-to-end benchmark: callout-proxy against nginx as the same forward hop, the token path under
# bursts, and memory. Loopback only; every process it starts is stopped on exit.
#
#   Benchmarks/e2e/run.sh                  # full run, writes BENCHMARKS.md at the repo root
#   ROUNDS=1 DURATION=5 Benchmarks/e2e/run.sh   # quicker
#   PROFILE=1 ...                          # also perf stat / perf record the proxy under load
#   NO_BUILD=1 ...                         # use the existing .build/release/callout-proxy
#   HOP_ONLY=1 ...                         # only the hop (both logging modes): no token path, no memory
#   MODES=quiet ...                        # one logging mode only ("default quiet" by default)
#   FILLER_NAMED=1000 ...                  # that many more named credentials, listed before the
#                                          # measured one (lookups that grow with the configuration)
#
# What runs (all on 127.0.0.1, ports picked free):
#   backend nginx  : TLS upstream (GET / -> small body, GET /big -> 1 GiB) and a static TLS token
#                    endpoint (the benchmark IdP: each token request is one access-log line)
#   sink           : Python TLS upstream that reads whole request bodies (1 GiB upload test)
#   reference nginx: forward hop adding a static Authorization header, keep-alive TLS pool, twice:
#                    with the default combined access log to a file and with access_log off
#   callout-proxy  : release build, serve --config generated.conf, twice: with its defaults
#                    (standard error to a file) and with --log-level warning
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/Benchmarks/e2e"
# shellcheck source=common.sh
source "$HERE/common.sh"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64 256}"
USERS="${USERS:-10000}"
BURST="${BURST:-1000}"
STREAM_BYTES="${STREAM_BYTES:-1073741824}"
OUT="${OUT:-$ROOT/BENCHMARKS.md}"
BIN="${BIN:-$ROOT/.build/release/callout-proxy}"  # BIN=path measures another build (with NO_BUILD=1)

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- tools -----------------------------------------------------------------------------------
need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ -z "${NO_BUILD:-}" ]; then
    log "swift build -c release"
    (cd "$ROOT" && swift build -c release --product callout-proxy >&2)
fi
[ -x "$BIN" ] || { echo "missing $BIN (build with: swift build -c release)" >&2; exit 1; }

# --- workspace and cleanup -------------------------------------------------------------------
W="$(mktemp -d /tmp/callout-e2e.XXXXXX)"
chmod 755 "$W" # nginx workers run unprivileged and read big.bin from here
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT INT TERM

UP=$(free_port); IDP=$(free_port); REF=$(free_port); REFQ=$(free_port); PX=$(free_port); PXD=$(free_port)
SINK=$(free_port)

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# Samples a PID's VmRSS every 0.1 s into FILE (max in KiB) until the sampler is killed.
start_sampler() {
    (max=0; while kill -0 "$1" 2>/dev/null; do
        r=$(rss_kib "$1" 2>/dev/null || echo 0); [ "${r:-0}" -gt "$max" ] && max=$r && echo "$max" >"$2"
        sleep 0.1
    done) &
    SAMPLER=$!
}
stop_sampler() { kill "$SAMPLER" 2>/dev/null || true; wait "$SAMPLER" 2>/dev/null || true; }

# --- certificates ----------------------------------------------------------------------------
log "generating certificates in $W"
make_certificates "$W"
truncate -s "$STREAM_BYTES" "$W/big.bin"

# --- backend nginx: upstream + benchmark IdP -------------------------------------------------
cat >"$W/backend.conf" <<EOF
worker_processes auto;
daemon off;
pid $W/backend.pid;
error_log $W/backend-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    ssl_certificate $W/leaf.pem;
    ssl_certificate_key $W/leaf.key;
    ssl_session_cache shared:SSL:1m;
    client_body_temp_path $W/tmp-body; proxy_temp_path $W/tmp-proxy;
    fastcgi_temp_path $W/tmp-fcgi; uwsgi_temp_path $W/tmp-uwsgi; scgi_temp_path $W/tmp-scgi;
    server {
        listen 127.0.0.1:$UP ssl;
        location = /big { default_type application/octet-stream; alias $W/big.bin; }
        location / { default_type text/plain; return 200 "hello from the upstream\n"; }
    }
    server {
        listen 127.0.0.1:$IDP ssl;
        location = /token {
            access_log $W/idp-access.log;
            default_type application/json;
            return 200 '{"access_token":"bench-token","token_type":"Bearer","expires_in":3600}';
        }
    }
}
EOF
# --- reference: nginx as the forward hop, once per logging mode --------------------------------
# default: nginx's default combined access log to a file; quiet: access_log off.
reference_conf() { # mode port access_log_directive
    cat >"$W/reference-$1.conf" <<EOF
worker_processes auto;
daemon off;
pid $W/reference-$1.pid;
error_log $W/reference-$1-error.log warn;
events { worker_connections 8192; }
http {
    $3
    keepalive_requests 1000000;
    client_body_temp_path $W/tmp-$1-body; proxy_temp_path $W/tmp-$1-proxy;
    fastcgi_temp_path $W/tmp-$1-fcgi; uwsgi_temp_path $W/tmp-$1-uwsgi; scgi_temp_path $W/tmp-$1-scgi;
    upstream bench_upstream {
        server 127.0.0.1:$UP;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$2;
        location / {
            proxy_pass https://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer static-bench-token";
            proxy_ssl_session_reuse on;
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
            proxy_ssl_trusted_certificate $W/ca.pem;
        }
    }
}
EOF
}
reference_conf default "$REF" "access_log $W/reference-access.log;"
reference_conf quiet "$REFQ" "access_log off;"
# --- callout-proxy ---------------------------------------------------------------------------
FILLER_NAMED="${FILLER_NAMED:-0}"
FILLER=""
for ((i = 0; i < FILLER_NAMED; i++)); do
    FILLER+=$'[[named_credential]]\n'"name = \"Filler_$i\""$'\n'"url = \"https://127.0.0.1:$UP\""$'\n'
    FILLER+=$'external_credential = "Bench_API"\n\n'
done
cat >"$W/proxy.conf" <<EOF
[proxy]
listen = "127.0.0.1:$PX"
admin_listen = "off"
ca_file = "$W/ca.pem"
request_timeout_seconds = 120
max_connections = 20000
max_cached_tokens = 20000

[[certificate]]
name = "Bench_Signing"
private_key_file = "$W/signing.key"
certificate_file = "$W/signing.crt"

[[external_credential]]
name = "Bench_API"
identity_provider_url = "https://127.0.0.1:$IDP/token"
signing_certificate = "Bench_Signing"
scope = "bench"
  [[external_credential.principal]]
  name = "Bench"
  sequence_number = 1
  client_id = "bench"
  permission_sets = ["Bench"]

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

$FILLER[[named_credential]]
name = "Bench"
url = "https://127.0.0.1:$UP"
external_credential = "Bench_API"

[[named_credential]]
name = "Burst"
url = "https://127.0.0.1:$UP"
external_credential = "Burst_API"

[[named_credential]]
name = "Users"
url = "https://127.0.0.1:$UP"
external_credential = "Users_API"

[[named_credential]]
name = "Sink"
url = "https://127.0.0.1:$SINK"
external_credential = "Bench_API"
EOF
"$BIN" check --config "$W/proxy.conf" >/dev/null

sed "s/^listen = .*/listen = \"127.0.0.1:$PXD\"/" "$W/proxy.conf" >"$W/proxy-default.conf"

log "starting backend nginx (upstream :$UP, IdP :$IDP), reference nginx :$REF (default) :$REFQ (quiet), sink :$SINK"
mkdir -p "$W/tmp-body"
"$NGINX" -c "$W/backend.conf" -p "$W" -e "$W/backend-error.log" &
PIDS+=($!)
"$NGINX" -c "$W/reference-default.conf" -p "$W" -e "$W/reference-default-error.log" &
NGINX_DEFAULT_PID=$!
PIDS+=("$NGINX_DEFAULT_PID")
"$NGINX" -c "$W/reference-quiet.conf" -p "$W" -e "$W/reference-quiet-error.log" &
NGINX_QUIET_PID=$!
PIDS+=("$NGINX_QUIET_PID")
python3 "$HERE/sink_upstream.py" "$SINK" "$W/leaf.pem" "$W/leaf.key" &
PIDS+=($!)
wait_port "$UP" 10; wait_port "$IDP" 10; wait_port "$REF" 10; wait_port "$REFQ" 10; wait_port "$SINK" 10
touch "$W/idp-access.log"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "starting callout-proxy :$PX (quiet) and :$PXD (default) (load average $LOAD_START)"
# quiet: no access line per callout, as nginx with access_log off.
"$BIN" serve --config "$W/proxy.conf" --log-level warning --log-format json >"$W/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
# default: as a user runs it, every process log line and access line on standard error, to a file.
"$BIN" serve --config "$W/proxy-default.conf" >"$W/proxy-default.log" 2>&1 &
PROXY_DEFAULT_PID=$!
PIDS+=("$PROXY_DEFAULT_PID")
wait_port "$PX" 20
wait_port "$PXD" 20
sleep 1
RSS_IDLE=$(rss_kib "$PROXY_PID")
log "proxy idle RSS $(mib "$RSS_IDLE") MiB"

idp_calls() { wc -l <"$W/idp-access.log" | tr -d ' '; }
ID_HEADER=(-H 'X-Callout-Permission-Sets: Bench')

# --- token path ------------------------------------------------------------------------------
if [ -z "${HOP_ONLY:-}" ]; then
log "token path: cold burst of $BURST concurrent requests for one principal"
before=$(idp_calls)
BURST_OUT=$(timeout 120 python3 "$HERE/burst.py" burst --port "$PX" --path /callout:Burst/ -n "$BURST" \
    -H 'X-Callout-Permission-Sets: Bench' 2>"$W/burst.err" || echo "burst failed")
sleep 0.5
BURST_IDP=$(( $(idp_calls) - before ))
log "$BURST_OUT -> IdP calls: $BURST_IDP ($(cat "$W/burst.err"))"

log "token path: steady run (wrk -c 64, ${DURATION}s) on the warmed principal"
before=$(idp_calls)
STEADY=$(timeout $((DURATION + 30)) wrk -t "$THREADS" -c 64 -d "${DURATION}s" "${ID_HEADER[@]}" \
    "http://127.0.0.1:$PX/callout:Burst/")
STEADY_REQS=$(awk '/requests in/ {print $1}' <<<"$STEADY")
STEADY_IDP=$(( $(idp_calls) - before ))
log "steady: $STEADY_REQS requests, IdP calls $STEADY_IDP"
fi

# --- throughput and latency: reference vs proxy ----------------------------------------------
to_ms() { # wrk latency value (e.g. 850.00us, 1.23ms, 1.01s) -> ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
CLK_TCK=$(getconf CLK_TCK)
# User + system CPU ticks of the given processes and of their children (nginx's workers).
cpu_ticks() {
    local pids=("$@") pid
    for pid in "$@"; do
        pids+=($(cat /proc/"$pid"/task/*/children 2>/dev/null || true))
    done
    for pid in "${pids[@]}"; do
        # Fields after the command name: state is $3 in "rest", utime $14 and stime $15 overall.
        sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}' || true
    done | awk '{n += $1} END {print n + 0}'
}
run_wrk() { # label connections url pids [headers...] -> "rps p50 p99 errors cpu_us_per_request"
    local label=$1 conns=$2 url=$3 pids=$4; shift 4
    local out before after
    before=$(cpu_ticks $pids)
    out=$(timeout $((DURATION + 30)) wrk -t "$THREADS" -c "$conns" -d "${DURATION}s" --latency "$@" "$url" 2>&1)
    after=$(cpu_ticks $pids)
    echo "$out" >>"$W/wrk-$label-$conns.txt"
    local rps p50 p99 errs reqs cpu
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    errs=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    cpu=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="${reqs:-0}" \
        'BEGIN { if (n > 0 && hz > 0) printf "%.1f", t / hz * 1e6 / n; else print 0 }')
    echo "$rps $p50 $p99 $errs $cpu"
}

# Modes: default (both hops log every request to a file) and quiet (neither logs per request).
MODES="${MODES:-default quiet}"
declare -A NGINX_URL=([default]="http://127.0.0.1:$REF/" [quiet]="http://127.0.0.1:$REFQ/")
declare -A NGINX_PIDS=([default]="$NGINX_DEFAULT_PID" [quiet]="$NGINX_QUIET_PID")
declare -A PROXY_URL=([default]="http://127.0.0.1:$PXD/callout:Bench/" [quiet]="http://127.0.0.1:$PX/callout:Bench/")
declare -A PROXY_PIDS=([default]="$PROXY_DEFAULT_PID" [quiet]="$PROXY_PID")
results_file="$W/results.txt"
: >"$results_file"
for conns in $CONNECTIONS; do
    log "direct to upstream, c=$conns"
    read -r rps p50 p99 errs cpu < <(run_wrk direct "$conns" "https://127.0.0.1:$UP/" "")
    echo "direct $conns 0 $rps $p50 $p99 $errs 0" >>"$results_file"
    for mode in $MODES; do
        for ((round = 1; round <= ROUNDS; round++)); do
            log "round $round/$ROUNDS c=$conns $mode: nginx"
            read -r rps p50 p99 errs cpu < <(run_wrk "nginx-$mode" "$conns" "${NGINX_URL[$mode]}" "${NGINX_PIDS[$mode]}")
            echo "nginx-$mode $conns $round $rps $p50 $p99 $errs $cpu" >>"$results_file"
            log "  nginx: $rps req/s p50 ${p50}ms p99 ${p99}ms errors $errs cpu ${cpu}us/req"
            log "round $round/$ROUNDS c=$conns $mode: callout-proxy"
            read -r rps p50 p99 errs cpu < <(run_wrk "proxy-$mode" "$conns" "${PROXY_URL[$mode]}" \
                "${PROXY_PIDS[$mode]}" "${ID_HEADER[@]}")
            echo "proxy-$mode $conns $round $rps $p50 $p99 $errs $cpu" >>"$results_file"
            log "  proxy: $rps req/s p50 ${p50}ms p99 ${p99}ms errors $errs cpu ${cpu}us/req"
        done
    done
done
PROXY_LOG_LINES=$(wc -l <"$W/proxy-default.log" | tr -d ' ')
NGINX_LOG_LINES=$(wc -l <"$W/reference-access.log" | tr -d ' ')
RSS_AFTER_LOAD=$(rss_kib "$PROXY_PID")
# The proxy gives memory back once no client connection was open for a whole check (5 s).
log "proxy RSS after the hop runs $(mib "$RSS_AFTER_LOAD") MiB; 15 s idle"
sleep 15
RSS_AFTER_IDLE=$(rss_kib "$PROXY_PID")
log "proxy RSS after 15 s idle $(mib "$RSS_AFTER_IDLE") MiB"

# --- optional profile ------------------------------------------------------------------------
if [ -n "${PROFILE:-}" ] && command -v perf >/dev/null; then
    log "profile: perf stat + perf record on the proxy under wrk -c 64"
    # Long enough to cover perf stat (5 s) and perf record (3 s) after it.
    (timeout 60 wrk -t "$THREADS" -c 64 -d 12s "${ID_HEADER[@]}" \
        "http://127.0.0.1:$PX/callout:Bench/" >"$W/profile-wrk.txt") &
    wrkpid=$!
    sleep 1
    perf stat -e task-clock,instructions,cycles,context-switches -p "$PROXY_PID" -- sleep 5 \
        >"$W/perf-stat.txt" 2>&1 || true
    # cpu-clock: a software event, sampled where hardware counters are not available (VMs).
    perf record -e cpu-clock -F 999 -g -p "$PROXY_PID" -o "$W/perf.data" -- sleep 3 >/dev/null 2>&1 || true
    wait "$wrkpid" || true
    cp "$W/perf.data" "${PERF_DATA:-/dev/null}" 2>/dev/null || true
    mkdir -p "$ROOT/Benchmarks/e2e/profile"
    cp "$W/perf-stat.txt" "$W/profile-wrk.txt" "$ROOT/Benchmarks/e2e/profile/" 2>/dev/null || true
    perf report -i "$W/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -v '^$' \
        | swift demangle --simplified | head -400 >"$ROOT/Benchmarks/e2e/profile/perf-report.txt" || true
    perf report -i "$W/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' \
        | head -20 >"$ROOT/Benchmarks/e2e/profile/perf-dso.txt" || true
fi

# --- memory ----------------------------------------------------------------------------------
if [ -z "${HOP_ONLY:-}" ]; then
log "memory: 1000 concurrent keep-alive connections held for 5 s"
RSS_BEFORE_CONN=$(rss_kib "$PROXY_PID")
start_sampler "$PROXY_PID" "$W/rss-conn.max"
HOLD_OUT=$(timeout 90 python3 "$HERE/burst.py" hold --port "$PX" --path /callout:Bench/ -n 1000 --hold-seconds 5 \
    -H 'X-Callout-Permission-Sets: Bench' 2>/dev/null || echo "hold failed")
stop_sampler
RSS_CONN=$(cat "$W/rss-conn.max" 2>/dev/null || echo 0)
log "$HOLD_OUT; max RSS $(mib "$RSS_CONN") MiB"
log "memory: wrk -c 1000 for 5 s"
start_sampler "$PROXY_PID" "$W/rss-wrk1000.max"
WRK1000=$(timeout 60 wrk -t "$THREADS" -c 1000 -d 5s --latency "${ID_HEADER[@]}" "http://127.0.0.1:$PX/callout:Bench/" 2>&1)
stop_sampler
RSS_WRK1000=$(cat "$W/rss-wrk1000.max" 2>/dev/null || echo 0)
WRK1000_RPS=$(awk '/^Requests\/sec:/ {print $2}' <<<"$WRK1000")

stream_test() { # label, then the curl command; prints "bytes seconds rss_before rss_max"
    local label=$1; shift
    sleep 1
    local before; before=$(rss_kib "$PROXY_PID")
    echo "$before" >"$W/rss-$label.max"
    start_sampler "$PROXY_PID" "$W/rss-$label.max"
    local res; res=$("$@" || echo "failed")
    stop_sampler
    echo "$res $before $(cat "$W/rss-$label.max")"
}
log "memory: 1 GiB response body through the proxy"
DOWN=$(stream_test download timeout 300 curl -sS -o /dev/null -w '%{size_download} %{time_total} %{http_code}' \
    "${ID_HEADER[@]}" "http://127.0.0.1:$PX/callout:Bench/big")
log "download: $DOWN"
log "memory: 1 GiB request body through the proxy (chunked upload to the sink)"
upload() {
    head -c "$STREAM_BYTES" /dev/zero | timeout 300 curl -sS -o "$W/upload.out" -X POST -T - -H 'Expect:' \
        -w '%{size_upload} %{time_total} %{http_code}' "${ID_HEADER[@]}" "http://127.0.0.1:$PX/callout:Sink/upload"
}
UPLOAD=$(stream_test upload upload)
log "upload: $UPLOAD ($(cat "$W/upload.out" 2>/dev/null))"

log "token path: $USERS distinct users with a per-user scope"
before=$(idp_calls)
USERS_OUT=$(timeout 300 python3 "$HERE/burst.py" users --port "$PX" --path /callout:Users/ -n "$USERS" -c 100 \
    -H 'X-Callout-Permission-Sets: Bench' 2>&1 || echo "users failed")
USERS_IDP=$(( $(idp_calls) - before ))
sleep 1
RSS_USERS=$(rss_kib "$PROXY_PID")
log "$USERS_OUT -> IdP calls $USERS_IDP, RSS $(mib "$RSS_USERS") MiB"
fi

# --- report ----------------------------------------------------------------------------------
set +e # a missing figure must not lose the others
summarize() { # kind conns -> "median_rps median_p50 median_p99 errors median_cpu_us"
    awk -v k="$1" -v c="$2" '$1 == k && $2 == c {print $4, $5, $6, $7, $8}' "$results_file" | python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
if not rows: print("0 0 0 0 0"); sys.exit()
cols = list(zip(*rows))
print(f"{statistics.median(cols[0]):.0f} {statistics.median(cols[1]):.3f} {statistics.median(cols[2]):.3f} {sum(cols[3]):.0f} {statistics.median(cols[4]):.1f}")'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
CPU_MODEL=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
MEM_TOTAL=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
SWIFT_VERSION=$(swift --version 2>&1 | grep -m1 -i "swift version" || true)
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/.*: //' || true)
WRK_VERSION=$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}' || true)

{
    echo "<!-- e2e:begin (written by Benchmarks/e2e/run.sh; edit outside these markers) -->"
    echo "## End-to-end run ($(date -u +%Y-%m-%d\ %H:%M) UTC)"
    echo
    echo "| machine | |"
    echo "|---|---|"
    echo "| cores (nproc) | $(nproc) |"
    echo "| CPU | $CPU_MODEL |"
    echo "| memory | $MEM_TOTAL |"
    echo "| Swift | $SWIFT_VERSION |"
    echo "| nginx | $NGINX_VERSION |"
    echo "| load average (1, 5, 15 min) at start / end | $LOAD_START / $LOAD_END |"
    echo "| load | $WRK_VERSION, $THREADS threads, keep-alive, ${DURATION} s per run, $ROUNDS rounds per mode alternating nginx / callout-proxy (medians) |"
    echo
    echo "Everything (wrk, upstream nginx, reference nginx or callout-proxy) shares the same $(nproc) cores."
    if [ "$FILLER_NAMED" -gt 0 ]; then
        echo
        echo "callout-proxy's configuration lists $FILLER_NAMED more named credentials before the one measured."
    fi
    echo
    echo "### Hop: callout-proxy vs nginx (small body, TLS upstream, keep-alive pool)"
    echo
    echo "Modes: **default** — both hops log every request to a file (nginx: its default combined"
    echo "\`access_log\`; callout-proxy: \`serve\` with its defaults, standard error redirected to a file);"
    echo "**quiet** — nginx \`access_log off\`, callout-proxy \`--log-level warning\`. CPU µs per request:"
    echo "user + system time of the hop's processes (nginx: master and workers) over the run ÷ requests."
    echo
    echo "| connections | mode | target | req/s | p50 ms | p99 ms | CPU µs/req | errors |"
    echo "|---:|---|---|---:|---:|---:|---:|---:|"
    for conns in $CONNECTIONS; do
        read -r rps p50 p99 errs cpu < <(summarize direct "$conns")
        echo "| $conns | | direct to upstream (limit) | $rps | $p50 | $p99 | | $errs |"
        for mode in $MODES; do
            for kind in nginx proxy; do
                read -r rps p50 p99 errs cpu < <(summarize "$kind-$mode" "$conns")
                name="nginx hop (reference)"; [ "$kind" = proxy ] && name=callout-proxy
                echo "| $conns | $mode | $name | $rps | $p50 | $p99 | $cpu | $errs |"
            done
        done
    done
    echo
    echo "| connections | mode | req/s callout-proxy / nginx | p50 ratio | p99 ratio | CPU per request ratio |"
    echo "|---:|---|---:|---:|---:|---:|"
    for conns in $CONNECTIONS; do
        for mode in $MODES; do
            read -r nr n50 n99 _ ncpu < <(summarize "nginx-$mode" "$conns")
            read -r pr p50 p99 _ pcpu < <(summarize "proxy-$mode" "$conns")
            echo "| $conns | $mode | **$(ratio "$pr" "$nr")** | $(ratio "$p50" "$n50") | $(ratio "$p99" "$n99") | $(ratio "$pcpu" "$ncpu") |"
        done
    done
    echo
    echo "Default mode wrote $PROXY_LOG_LINES lines to callout-proxy's log file and $NGINX_LOG_LINES to nginx's access log."
    echo
    echo "Per round (req/s, p50 ms, p99 ms, errors, CPU µs/req):"
    echo
    echo '```'
    awk '{printf "%-13s c=%-4s round %s: %10s req/s  p50 %8s  p99 %8s  errors %s  cpu %s\n", $1, $2, $3, $4, $5, $6, $7, $8}' "$results_file"
    echo '```'
    echo
    echo "callout-proxy VmRSS (the quiet instance): idle after start $(mib "$RSS_IDLE") MiB, after the hop runs"
    echo "$(mib "$RSS_AFTER_LOAD") MiB, after 15 s idle $(mib "$RSS_AFTER_IDLE") MiB."
    echo
    if [ -z "${HOP_ONLY:-}" ]; then
    echo "### Token path"
    echo
    echo "| test | result |"
    echo "|---|---|"
    echo "| cold burst: $BURST concurrent requests, one principal | IdP calls: **$BURST_IDP** ($BURST_OUT) |"
    echo "| steady: wrk -c 64 ${DURATION} s on the warmed principal | $STEADY_REQS requests, IdP calls: **$STEADY_IDP** ($(ratio "$STEADY_IDP" "$STEADY_REQS") per request) |"
    echo "| $USERS distinct users, per-user scope \`{!\"user:\" & \$User.Id}\` | IdP calls: $USERS_IDP; RSS after: **$(mib "$RSS_USERS") MiB** ($USERS_OUT) |"
    echo
    echo "### Memory (callout-proxy VmRSS)"
    echo
    echo "| state | RSS MiB |"
    echo "|---|---:|"
    echo "| idle after start | **$(mib "$RSS_IDLE")** |"
    echo "| after the hop runs | $(mib "$RSS_AFTER_LOAD") |"
    echo "| 1,000 keep-alive connections held 5 s (max; before: $(mib "$RSS_BEFORE_CONN")) | $(mib "$RSS_CONN") |"
    echo "| wrk -c 1000 for 5 s (max; $WRK1000_RPS req/s) | $(mib "$RSS_WRK1000") |"
    read -r dbytes dtime dcode dbefore dmax <<<"$DOWN"
    read -r ubytes utime ucode ubefore umax <<<"$UPLOAD"
    echo "| 1 GiB response body: before → max (growth) | $(mib "$dbefore") → $(mib "$dmax") (**+$(mib $((dmax - dbefore)))**); $dbytes bytes in ${dtime} s, HTTP $dcode |"
    echo "| 1 GiB request body (chunked): before → max (growth) | $(mib "$ubefore") → $(mib "$umax") (**+$(mib $((umax - ubefore)))**); $ubytes bytes in ${utime} s, HTTP $ucode, upstream: $(tr -d '\n' <"$W/upload.out" 2>/dev/null) |"
    echo "| after $USERS per-user tokens | $(mib "$RSS_USERS") |"
    fi
    echo "<!-- e2e:end -->"
} >"$W/section.md"

python3 - "$OUT" "$W/section.md" <<'EOF'
import os, re, sys
out, section = sys.argv[1], open(sys.argv[2]).read()
text = open(out).read() if os.path.exists(out) else "# Benchmarks\n\nSee Benchmarks/README.md for how to run them.\n\n<!-- e2e:begin --><!-- e2e:end -->\n"
pattern = re.compile(r"<!-- e2e:begin.*?<!-- e2e:end -->\n?", re.S)
text = pattern.sub(lambda _: section, text, count=1) if pattern.search(text) else text + "\n" + section
open(out, "w").write(text)
EOF
cat "$W/section.md"
log "wrote $OUT"
