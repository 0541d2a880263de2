/* libFuzzer target: arbitrary bytes as a repro capsule. Must never crash or
 * leak; any result is fine. Run: make fuzz */
#include "zmlx/capsule.h"
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static zm_capsule c;
    zm_capsule_parse(&c, (const char *)data, size);
    return 0;
}
