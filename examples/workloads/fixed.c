/* A fixed amount of CPU work (no clock reads), for overhead benchmarks: the same instructions every run.
 * Usage: fixed [MILLION_ITERATIONS] (default 400). Call tree: main -> work -> step.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static volatile uint64_t sink;

__attribute__((noinline)) static uint64_t step(uint64_t x) {
    for (int i = 0; i < 1000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

__attribute__((noinline)) static uint64_t work(uint64_t millions) {
    uint64_t x = 88172645463325252ull;
    for (uint64_t i = 0; i < millions * 1000; i++) x = step(x);
    return x;
}

int main(int argc, char **argv) {
    uint64_t m = argc > 1 ? strtoull(argv[1], 0, 10) : 400;
    sink = work(m);
    printf("fixed: %llu\n", (unsigned long long)sink);
    return 0;
}
