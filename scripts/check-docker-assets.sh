#!/usr/bin/env bash
# Checks the container assets without a Docker engine:
#   - every local file the Dockerfile COPYs, compose.yaml builds or mounts, and the Kubernetes
#     manifests name, exists;
#   - the manifests parse as YAML (when python3 with PyYAML is available);
#   - docker/proxy.conf passes `callout-proxy check` with the files laid out as in the container
#     (when a built callout-proxy binary is found);
#   - with --build: `swift build -c release --static-swift-stdlib` succeeds, and the binary needs
#     no Swift runtime library at run time (what the slim runtime image relies on).
# Usage: scripts/check-docker-assets.sh [--build]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok:   $*"; }
exists() { # path, what
    if [ -e "$1" ]; then pass "$2: $1"; else fail "$2: $1 does not exist"; fi
}

dockerfile=docker/Dockerfile
compose=docker/compose.yaml
manifests=(docker/kubernetes/*.yaml)
for f in "$dockerfile" docker/Dockerfile.dockerignore "$compose" "${manifests[@]}" docker/README.md; do
    exists "$f" "asset"
done

# Dockerfile: COPY sources (not --from=stage) are relative to the build context, the repository root.
while read -r line; do
    read -ra words <<<"$line"
    args=()
    for w in "${words[@]:1}"; do [[ "$w" == --* ]] || args+=("$w"); done
    [ "${#args[@]}" -ge 2 ] || continue
    for src in "${args[@]:0:${#args[@]}-1}"; do
        # prebuilt/: only in the context scripts/container-test.sh makes (BINARY_FROM=prebuilt).
        [[ "$src" == prebuilt/* ]] && continue
        exists "$src" "Dockerfile COPY"
    done
done < <(grep -E '^COPY ' "$dockerfile" | grep -v -- '--from=')

# The image is built the way --build proves it builds.
if grep -q 'swift build -c release --static-swift-stdlib' "$dockerfile"; then
    pass "Dockerfile builds with swift build -c release --static-swift-stdlib"
else
    fail "Dockerfile does not build with swift build -c release --static-swift-stdlib"
fi

# compose.yaml: build contexts, Dockerfiles and bind-mounted host paths, relative to docker/.
context=$(sed -n 's/^ *context: *//p' "$compose" | sort -u)
for c in $context; do
    exists "docker/$c" "compose build context"
    for d in $(sed -n 's/^ *dockerfile: *//p' "$compose" | sort -u); do
        exists "docker/$c/$d" "compose dockerfile"
    done
done
while read -r host; do
    exists "docker/$host" "compose volume"
done < <(sed -n 's/^ *- *\(\.\{1,2\}\/[^:]*\):.*/\1/p' "$compose" | sort -u)

# Kubernetes: every ConfigMap / Secret a pod mounts is defined in the manifests or documented.
for m in "${manifests[@]}"; do
    for cm in $(sed -n 's/^ *name: *//p' <(grep -A1 -E '^ *configMap:' "$m") | sort -u); do
        if grep -qE "^  name: $cm\$" "$m"; then pass "$m: ConfigMap $cm defined"; else fail "$m: ConfigMap $cm not defined"; fi
    done
    for s in $(sed -n 's/^ *secretName: *//p' "$m" | sort -u); do
        if grep -q "create secret generic $s" "$m"; then pass "$m: Secret $s (created with kubectl, as documented)"; else fail "$m: Secret $s is neither defined nor documented"; fi
    done
    # Key files named in the embedded configuration must be in the Secret's documented files.
    for k in $(sed -n 's/^ *\(private_key_file\|certificate_file\) *= *"keys\/\([^"]*\)".*/\2/p' "$m"); do
        if grep -q -- "--from-file=$k=" "$m"; then pass "$m: keys/$k is in the Secret"; else fail "$m: keys/$k is not in the documented Secret"; fi
    done
done

if python3 -c 'import yaml' 2>/dev/null; then
    for y in "$compose" "${manifests[@]}"; do
        if python3 -c 'import sys, yaml; list(yaml.safe_load_all(open(sys.argv[1])))' "$y"; then
            pass "YAML parses: $y"
        else
            fail "YAML does not parse: $y"
        fi
    done
else
    echo "skip: python3 with PyYAML not found; YAML syntax not checked"
fi

# docker/proxy.conf, laid out as compose mounts it, must pass `callout-proxy check`.
binary=""
for b in .build/release/callout-proxy .build/debug/callout-proxy; do
    if [ -x "$b" ]; then binary="$b"; break; fi
done
if [ -n "$binary" ]; then
    layout="$(mktemp -d)"
    trap 'rm -rf "$layout"' EXIT
    cp docker/proxy.conf "$layout/proxy.conf"
    cp -R examples/keys "$layout/keys"
    mkdir -p "$layout/dev-tls" && cp docker/dev-tls/ca.pem "$layout/dev-tls/ca.pem"
    if "$binary" check --config "$layout/proxy.conf" >/dev/null 2>"$layout/check.err"; then
        pass "docker/proxy.conf passes callout-proxy check (container layout)"
    else
        cat "$layout/check.err"
        fail "docker/proxy.conf does not pass callout-proxy check"
    fi
else
    echo "skip: no built callout-proxy; docker/proxy.conf not checked (swift build first)"
fi

if [ "${1:-}" = "--build" ]; then
    echo "building: swift build -c release --static-swift-stdlib --product callout-proxy"
    if swift build -c release --static-swift-stdlib --product callout-proxy; then
        bin="$(swift build -c release --show-bin-path)/callout-proxy"
        pass "release build with --static-swift-stdlib: $bin ($(du -h "$bin" | cut -f1))"
        if command -v ldd >/dev/null; then
            echo "dynamic libraries the binary needs:"
            ldd "$bin" | sed 's/^/      /'
            if ldd "$bin" | grep -qiE 'libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime'; then
                fail "the binary still needs a Swift runtime library"
            else
                pass "no Swift runtime library needed at run time"
            fi
        fi
        "$bin" --version >/dev/null && pass "the release binary runs: $("$bin" --version)"
    else
        fail "swift build -c release --static-swift-stdlib failed"
    fi
fi

if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
