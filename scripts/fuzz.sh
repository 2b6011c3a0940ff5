#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ (AddressSanitizer on) and runs each for a bounded time.
#   scripts/fuzz.sh [seconds-per-target] [target...]
# Seeds come from Fuzz/Corpus/<target>/ (read only); new inputs go to Fuzz/.build/corpus/<target>/;
# crashes are written to Fuzz/artifacts/<target>/ and make the script fail.
set -euo pipefail

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzConfig FuzzFormula FuzzAddressing FuzzResponseFraming)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz="$root/Fuzz"

cd "$fuzz"
swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
bin="$(swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --show-bin-path)"

status=0
for target in "${targets[@]}"; do
    work="$fuzz/.build/corpus/$target"
    artifacts="$fuzz/artifacts/$target"
    mkdir -p "$work" "$artifacts"
    # TOMLKit (a dependency) leaks small allocations on every parse (TOMLTable(string:), and the
    # C shims behind TOMLValueConvertible.string/int/bool and TOMLTable.keys); LeakSanitizer would
    # stop FuzzConfig at the first input, so leaks are not checked there. Crashes, overflows and
    # traps still are.
    leaks=1
    [ "$target" = FuzzConfig ] && leaks=0
    echo "== $target: ${seconds}s"
    if ! ASAN_OPTIONS="detect_leaks=$leaks${ASAN_OPTIONS:+:$ASAN_OPTIONS}" "$bin/$target" "$work" "$fuzz/Corpus/$target" \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=4096 -detect_leaks=$leaks \
        -artifact_prefix="$artifacts/" -print_final_stats=1; then
        echo "!! $target found a failure: see $artifacts/" >&2
        status=1
    fi
done
exit $status
