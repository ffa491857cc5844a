#!/usr/bin/env bash
# Runs the test suites and prints one closing line "N passed, N failed".
#   SUITES   which suites to run, default "unit e2e e2e-curl e2e-asan unit-asan fuzz-replay"
#   E2E_FILTER  glob under tests/e2e (default *.test.mjs)
#   E2E_CURL_FILTER, E2E_ASAN_FILTER  the files the e2e-curl and e2e-asan suites run again
# e2e-curl: the data-plane files with --upstream-engine curl (libcurl for every
# upstream; the default sends plain-http upstreams through the built-in client).
# e2e-asan: the data-plane files against the ASan+UBSan daemons (make BUILD=asan
# all); any sanitizer report, leaks at exit included, fails the suite.
# Unit tests are cmocka executables (TAP output); e2e tests run under node --test.
set -u
cd "$(dirname "$0")/../.."
SUITES=${SUITES:-"unit e2e e2e-curl e2e-asan unit-asan fuzz-replay"}
E2E_CURL_FILTER=${E2E_CURL_FILTER:-"dataplane_*.test.mjs providers_matrix.test.mjs routing_failover.test.mjs"}
E2E_ASAN_FILTER=${E2E_ASAN_FILTER:-"dataplane_*.test.mjs providers_matrix.test.mjs"}
RESULTS=build/results
export SY_FIXTURES_DIR=${SY_FIXTURES_DIR:-$PWD/tests/fixtures/providers}
mkdir -p "$RESULTS"
passed=0
failed=0

run_unit() { # $1 = build dir (build/release or build/asan)
    local dir=$1 tag=$2 t out rc p f
    for t in "$dir"/tests/test_*; do
        [ -x "$t" ] || continue
        out="$RESULTS/$tag-$(basename "$t").tap"
        CMOCKA_MESSAGE_OUTPUT=TAP ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
            timeout 300 "$t" >"$out" 2>&1
        rc=$?
        p=$(grep -cE '^ok ' "$out")
        f=$(grep -cE '^not ok ' "$out")
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crashed, sanitizer report, timeout
        passed=$((passed + p))
        failed=$((failed + f))
        if [ "$f" -ne 0 ]; then
            echo "FAIL $tag $(basename "$t") (exit $rc):"
            grep -vE '^ok ' "$out" | head -40
        else
            echo "ok   $tag $(basename "$t") ($p)"
        fi
    done
}

run_e2e() { # $1 = tag, $2 = globs under tests/e2e; extra environment from the caller
    local tag=$1 globs=$2 files="" g out p f c
    for g in $globs; do
        files="$files $(ls tests/e2e/$g 2>/dev/null)"
    done
    [ -n "${files// /}" ] || return 0
    out="$RESULTS/$tag-$$.tap" # one per run: concurrent runs must not count each other
    # shellcheck disable=SC2086
    (cd tests && timeout 900 node --test --test-concurrency=2 --test-timeout=120000 \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="../$out" \
        $(for x in $files; do echo "${x#tests/}"; done))
    p=$(grep -E '^# pass ' "$out" | awk '{print $3}')
    f=$(grep -E '^# fail ' "$out" | awk '{print $3}')
    c=$(grep -E '^# cancelled ' "$out" | awk '{print $3}')
    p=${p:-0}
    f=$((${f:-1} + ${c:-0}))
    passed=$((passed + p))
    failed=$((failed + f))
    echo "$tag: $p passed, $f failed"
}

run_e2e_asan() {
    local logs="$PWD/$RESULTS/asan-e2e-$$" n
    [ -x build/asan/bin/switchyard-dataplane ] || {
        echo "FAIL e2e-asan: build/asan/bin missing (make BUILD=asan all)"
        failed=$((failed + 1))
        return
    }
    rm -rf "$logs" && mkdir -p "$logs"
    SWITCHYARD_BIN_DIR=$PWD/build/asan/bin \
        ASAN_OPTIONS="detect_leaks=1:log_path=$logs/asan" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan" \
        run_e2e e2e-asan "$E2E_ASAN_FILTER"
    n=$(find "$logs" -type f | wc -l)
    if [ "$n" -ne 0 ]; then
        echo "FAIL e2e-asan: $n sanitizer report(s) in $logs:"
        find "$logs" -type f | head -5 | xargs -r head -30
        failed=$((failed + n))
    fi
}

run_fuzz_replay() { # each fuzz target's corpus, as a regression test under ASan+UBSan
    local out="$RESULTS/fuzz-replay.tap" rc p f
    ls tests/fuzz/fuzz_*.c >/dev/null 2>&1 || return 0
    tests/tools/fuzz.sh replay >"$out" 2>&1
    rc=$?
    p=$(grep -cE '^ok ' "$out")
    f=$(grep -cE '^not ok ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        echo "FAIL fuzz-replay (exit $rc):"
        tail -40 "$out"
    else
        echo "ok   fuzz-replay ($p corpora)"
    fi
}

for s in $SUITES; do
    case $s in
    unit) run_unit build/release unit ;;
    unit-asan) run_unit build/asan asan ;;
    e2e) run_e2e e2e "${E2E_FILTER:-*.test.mjs}" ;;
    e2e-curl) SWITCHYARD_UPSTREAM_ENGINE=curl run_e2e e2e-curl "$E2E_CURL_FILTER" ;;
    e2e-asan) run_e2e_asan ;;
    fuzz-replay) run_fuzz_replay ;;
    esac
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
