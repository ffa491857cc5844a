/* libFuzzer target: the openai adapter (streams, responses, errors, requests)
 * and the Anthropic-style ingress behind it; see translate_harness.h. */
#include "translate_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_translate(&sy_provider_openai, data, size);
}
