#!/usr/bin/env bash
# libFuzzer targets: every tests/fuzz/fuzz_<name>.c (LLVMFuzzerTestOneInput).
#   tests/tools/fuzz.sh            build each with clang and fuzz it FUZZ_SECONDS (default 30) s,
#                                  growing tests/fuzz/corpus/<name>/
#   tests/tools/fuzz.sh replay     build each with the ASan build's archives and a plain driver,
#                                  and replay its corpus (what `make test` runs)
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:-fuzz}
LLHTTP_INC=/usr/share/include/llhttp
PKGS="libuv libcurl sqlite3 libprotobuf-c nanomsg libcrypto json-c"
out=build/fuzz
mkdir -p "$out"
shopt -s nullglob
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    corpus=tests/fuzz/corpus/${name#fuzz_}
    mkdir -p "$corpus"
    if [ "$mode" = replay ]; then
        gcc -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
            -I. -Icommon -Ibuild/gen -I$LLHTTP_INC $(pkg-config --cflags $PKGS) \
            "$src" tests/fuzz/replay_main.c -o "$out/$name-replay" \
            -Wl,--start-group build/asan/libsydataplane.a build/asan/libsycommon.a -Wl,--end-group \
            $(pkg-config --libs $PKGS) -lm
        "$out/$name-replay" "$corpus"
    else
        srcs=$(ls common/*.c dataplane/*.c dataplane/providers/*.c 2>/dev/null | grep -v '/main.c$')
        # shellcheck disable=SC2086
        clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
            -I. -Icommon -Ibuild/gen -I$LLHTTP_INC $(pkg-config --cflags $PKGS) \
            "$src" $srcs build/gen/switchyard.pb-c.c /usr/share/llhttp/*.c \
            -o "$out/$name" $(pkg-config --libs $PKGS) -lm
        "$out/$name" -max_total_time="${FUZZ_SECONDS:-30}" -artifact_prefix="$corpus/crash-" "$corpus"
    fi
done
