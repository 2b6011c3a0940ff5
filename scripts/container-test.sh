#!/usr/bin/env bash
# The container image, built and run (see docker/README.md, "What is verified"):
#   1. installs what it needs (podman, runc, debootstrap; validators from PyPI in a venv);
#   2. makes the runtime stage's base image (debian:bookworm-slim) with debootstrap when it is
#      not there and cannot be pulled;
#   3. builds callout-proxy with the Dockerfile's own flags (--static-swift-stdlib; release, or
#      debug with --debug as CI does), then docker/Dockerfile's runtime stage around it
#      (--build-arg BINARY_FROM=prebuilt);
#   4. runs the image as production would: uid 10001, read-only root filesystem, configuration
#      and keys mounted read-only; checks the HEALTHCHECK passes, performs a callout through the
#      container to a development identity provider and echo API on the host (`callout-proxy
#      demo`) and expects 200 with a valid injected token, then SIGTERM: exit 0 within the grace;
#   5. validates docker/compose.yaml (compose-spec schema, podman-compose) and the Kubernetes
#      manifest (kubernetes-validate --strict), offline.
# If podman cannot start any container on this machine (a kernel or sandbox restriction), it
# says so in one line and exits 0; any failure of the image, the binary or the callout exits 1.
# Usage: scripts/container-test.sh [--debug]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

mode=release
[ "${1:-}" = "--debug" ] && mode=debug
image=localhost/callout-proxy:container-test
base=docker.io/library/debian:bookworm-slim
rootfs=/var/tmp/callout-proxy-bookworm-rootfs
venv=/var/tmp/callout-proxy-validators
container=callout-proxy-container-test
podman=(podman --runtime runc --cgroup-manager cgroupfs)
# Explicit limits: podman's defaults fail to set rlimits under runc here, and so do limits above
# this shell's own hard limit.
nofile="$(ulimit -Hn)"
if [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ]; then nofile=65536; fi
limits=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)
work="$(mktemp -d /tmp/callout-proxy-container.XXXXXX)"
demo_pid=""

step() { echo "== $*"; }
fail() {
    echo "container test FAILED: $*"
    exit 1
}
cleanup() {
    "${podman[@]}" rm -f "$container" >/dev/null 2>&1 || true
    [ -n "$demo_pid" ] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

step "installing what is missing"
need=()
for tool in podman runc debootstrap curl; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    echo "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q kubernetes-validate check-jsonschema podman-compose
fi

step "validating docker/compose.yaml, docker/compose-fleet.yaml and docker/kubernetes/*.yaml (offline)"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker/compose.yaml ||
    fail "docker/compose.yaml does not match the compose specification"
"$venv/bin/podman-compose" -f docker/compose.yaml config >"$work/compose-config.yaml" ||
    fail "podman-compose cannot read docker/compose.yaml"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker/compose-fleet.yaml ||
    fail "docker/compose-fleet.yaml does not match the compose specification"
CALLOUT_TOKEN_STORE_KEY=example CALLOUT_TOKEN_STORE_PASSWORD=example \
    "$venv/bin/podman-compose" -f docker/compose-fleet.yaml config >"$work/compose-fleet-config.yaml" ||
    fail "podman-compose cannot read docker/compose-fleet.yaml"
"$venv/bin/kubernetes-validate" --strict --quiet docker/kubernetes/*.yaml ||
    fail "the Kubernetes manifest does not validate"
echo "ok: compose schema, podman-compose config, kubernetes-validate --strict"

step "base image $base"
if ! "${podman[@]}" image exists "$base"; then
    if ! timeout 60 "${podman[@]}" pull -q "$base" >/dev/null 2>&1; then
        echo "cannot pull $base: making it with debootstrap --variant=minbase bookworm"
        mirror="$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)"
        if [ ! -x "$rootfs/bin/sh" ]; then
            rm -rf "$rootfs"
            debootstrap --variant=minbase bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" \
                >"$work/debootstrap.log" 2>&1 || {
                tail -20 "$work/debootstrap.log"
                fail "debootstrap failed"
            }
            rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        fi
        tar -C "$rootfs" -c . | "${podman[@]}" import -q - "$base" >/dev/null || fail "podman import failed"
    fi
fi

step "can this machine start a container at all?"
if ! probe="$("${podman[@]}" run --rm --network host "${limits[@]}" "$base" true 2>&1)"; then
    echo "container test skipped: podman cannot start a container on this machine ($(echo "$probe" | tail -1))"
    exit 0
fi

step "building callout-proxy ($mode) with the Dockerfile's flags"
# A build folder of its own: relinking objects that `swift test` compiled without
# --static-swift-stdlib leaves Foundation's ICU symbols unresolved.
scratch=(--scratch-path "$root/.build-static")
swift build -c "$mode" --static-swift-stdlib --product callout-proxy "${scratch[@]}" 2>&1 | tail -3
bin="$(swift build -c "$mode" --show-bin-path "${scratch[@]}")/callout-proxy"
if ldd "$bin" | grep -qiE 'libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime'; then
    fail "the binary still needs a Swift runtime library: $(ldd "$bin" | tr '\n' ' ')"
fi
mkdir -p "$work/context/prebuilt"
install -s -m 0755 "$bin" "$work/context/prebuilt/callout-proxy"

step "building the image's runtime stage around it"
"${podman[@]}" build --format docker --network host "${limits[@]}" --build-arg BINARY_FROM=prebuilt \
    --build-arg CALLOUT_PROXY_COMMIT="$(git describe --always --dirty 2>/dev/null || echo unknown)" \
    -f docker/Dockerfile -t "$image" "$work/context" >"$work/build.log" 2>&1 || {
    tail -30 "$work/build.log"
    fail "podman build of docker/Dockerfile failed"
}

step "a development identity provider and echo API on the host (callout-proxy demo)"
"$bin" demo --listen 127.0.0.1:0 >"$work/demo.log" 2>&1 &
demo_pid=$!
demo_conf=""
for _ in $(seq 1 300); do
    demo_conf="$(grep -o '/[^ ]*/demo\.conf' "$work/demo.log" | head -1 || true)"
    [ -n "$demo_conf" ] && [ -f "$demo_conf" ] && break
    kill -0 "$demo_pid" 2>/dev/null || { cat "$work/demo.log"; fail "demo stopped"; }
    sleep 0.1
done
[ -n "$demo_conf" ] || fail "demo printed no configuration file: $(cat "$work/demo.log")"

# The container's configuration: the demo's, with the keys and CA mounted under
# /etc/callout-proxy/keys as in production, and its own listen and admin ports.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
etc="$work/etc"
mkdir -p "$etc/keys"
folder="$(dirname "$demo_conf")"
sed -e "s|^listen = .*|listen = \"127.0.0.1:$port\"|" \
    -e 's|^admin_listen = .*|admin_listen = "127.0.0.1:9901"|' \
    -e "s|\"$folder/|\"keys/|g" "$demo_conf" >"$etc/proxy.conf"
for f in $(grep -o '"keys/[^"]*"' "$etc/proxy.conf" | tr -d '"' | sort -u); do
    cp "$folder/${f#keys/}" "$etc/$f"
done
chown -R 10001:10001 "$etc"
chmod 0640 "$etc"/keys/*
if ss -ltn 2>/dev/null | grep -q '127.0.0.1:9901 '; then fail "port 9901 (the HEALTHCHECK's admin port) is in use on this host"; fi

step "running the image: uid 10001, read-only root, configuration and keys read-only"
"${podman[@]}" run -d --name "$container" --network host "${limits[@]}" --read-only \
    -v "$etc/proxy.conf:/etc/callout-proxy/proxy.conf:ro" -v "$etc/keys:/etc/callout-proxy/keys:ro" \
    "$image" >/dev/null || fail "the container did not start"
started=""
for _ in $(seq 1 300); do
    if "${podman[@]}" logs "$container" 2>&1 | grep -q 'callout-proxy started'; then
        started=yes
        break
    fi
    [ "$("${podman[@]}" inspect -f '{{.State.Running}}' "$container")" = true ] || break
    sleep 0.1
done
[ -n "$started" ] || {
    "${podman[@]}" logs "$container" 2>&1 | tail -20
    fail "the proxy did not start in the container"
}
uid="$("${podman[@]}" exec "$container" id -u)"
[ "$uid" = 10001 ] || fail "the proxy runs as uid $uid, not 10001"
if "${podman[@]}" exec "$container" sh -c 'touch /usr/local/bin/x' 2>/dev/null; then
    fail "the root filesystem is writable"
fi
echo "ok: uid 10001, read-only root filesystem"

"${podman[@]}" healthcheck run "$container" || fail "the image's HEALTHCHECK failed"
echo "ok: HEALTHCHECK passes"

status="$(curl -sS --max-time 30 -o "$work/callout.json" -w '%{http_code}' -x "http://127.0.0.1:$port" \
    -H 'X-Callout-Permission-Sets: Acme_Readers' -H 'X-Callout-User-Department: Finance' \
    http://Acme/items)" || fail "the callout through the container failed"
[ "$status" = 200 ] || fail "callout answered $status: $(cat "$work/callout.json")"
grep -q '"token_valid":true' "$work/callout.json" ||
    fail "the echo API did not get a valid token: $(cat "$work/callout.json")"
echo "ok: callout through the container: 200, token injected and accepted by the echo API"

grace="$(sed -n 's/^shutdown_grace_seconds *= *\([0-9]*\).*/\1/p' "$etc/proxy.conf")"
grace="${grace:-15}"  # the default shutdown_grace_seconds
"${podman[@]}" kill --signal TERM "$container" >/dev/null
code="$(timeout "$((grace + 5))" "${podman[@]}" wait "$container" || echo timeout)"
[ "$code" = 0 ] || {
    "${podman[@]}" logs "$container" 2>&1 | tail -20
    fail "after SIGTERM: exit $code (expected 0 within ${grace}s)"
}
echo "ok: SIGTERM: exit 0"

logs="$("${podman[@]}" logs "$container" 2>&1)"
if grep -qE 'PRIVATE KEY|Bearer [A-Za-z0-9_-]{12}' <<<"$logs"; then fail "a secret in the container's logs"; fi
echo "container test passed ($mode binary, image $image)"
