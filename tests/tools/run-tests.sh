#!/usr/bin/env bash
# Runs the test suites and prints one closing line "N passed, N failed".
#   SUITES   which suites to run, default "unit e2e unit-asan"
#   E2E_FILTER  glob under tests/e2e (default *.test.mjs)
# Unit tests are cmocka executables (TAP output); e2e tests run under node --test.
set -u
cd "$(dirname "$0")/../.."
SUITES=${SUITES:-"unit e2e unit-asan fuzz-replay"}
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

run_e2e() {
    local files out p f c
    files=$(ls tests/e2e/${E2E_FILTER:-*.test.mjs} 2>/dev/null)
    [ -n "$files" ] || return 0
    out="$RESULTS/e2e-$$.tap" # one per run: concurrent runs must not count each other
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
    e2e) run_e2e ;;
    fuzz-replay) run_fuzz_replay ;;
    esac
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
