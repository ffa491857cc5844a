/* libFuzzer target for envelope opening: arbitrary bytes must be refused
 * cleanly (never accepted without the key, never crash or leak), and the
 * input sealed as a payload must open back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char hex[] = "4a1f0c3e5b2d6a7988b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f50617";
    sy_envelope_key_t key;
    if (sy_envelope_key_from_hex(hex, sizeof(hex) - 1, &key) != 0)
        abort();

    sy_envelope_t env;
    int rc = sy_envelope_open(&key, data, size, &env);
    /* Forging a GCM tag is out of the fuzzer's reach: success means a bug. */
    if (rc == 0 || (rc != SY_EINVAL && rc != SY_EACCES))
        abort();
    if (env.payload.len != 0 || env.payload.data != NULL || env.sender[0] != '\0')
        abort();
    sy_envelope_free(&env);

    sy_buf_t out;
    sy_buf_init(&out);
    uint64_t seq = size;
    if (sy_envelope_seal(&key, 1, "fuzz/0", seq, data, size, &out) != 0)
        abort();
    if (sy_envelope_open(&key, out.data, out.len, &env) != 0)
        abort();
    if (env.payload.len != size || (size && memcmp(env.payload.data, data, size) != 0) ||
        env.seq != seq || strcmp(env.sender, "fuzz/0") != 0 || env.kind != 1)
        abort();
    sy_envelope_free(&env);
    /* Flip one byte chosen by the input: must be refused. */
    if (out.len > 0) {
        size_t at = size ? data[0] % out.len : 0;
        out.data[at] ^= (char)(size ? (data[size - 1] | 1) : 1);
        if (sy_envelope_open(&key, out.data, out.len, &env) == 0)
            abort();
        sy_envelope_free(&env);
    }
    sy_buf_free(&out);
    return 0;
}
