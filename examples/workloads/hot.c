/* A CPU-bound workload with a known call tree, for kprof's demo, tests and benchmarks.
 *
 *   main -> run -> heavy     (about 60% of the work)
 *               -> medium    (about 30%) -> leaf_medium
 *               -> light     (about 10%)
 *
 * Usage: hot [SECONDS]   (default 1.0; CPU time, measured with CLOCK_PROCESS_CPUTIME_ID)
 *
 * CPU time, not wall time: a sampling profiler's cpu-clock samples the CPU time a task runs, so
 * `hot 1` recorded at 999 Hz gives about 999 samples however busy the machine is (tests derive
 * their sample-count margins from that; see: issue #10 done-means 6).
 * Build with or without frame pointers; every function is noinline so the tree survives -O2.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NOINLINE __attribute__((noinline))

static volatile uint64_t sink;
/* Stored after each call, so no call is a tail call: every function keeps its stack frame. */
static volatile uint64_t last;

/* GCC omits the frame pointer in leaf functions even with -fno-omit-frame-pointer; taking the
 * frame address keeps it, so a frame-pointer walk from inside spin also finds spin's caller. */
static void *volatile frame_anchor;

NOINLINE static uint64_t spin(uint64_t n, uint64_t seed) {
    frame_anchor = __builtin_frame_address(0);
    uint64_t x = seed;
    for (uint64_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

NOINLINE uint64_t heavy(uint64_t n) { last = spin(6 * n, 1); return last; }
NOINLINE uint64_t leaf_medium(uint64_t n) { last = spin(3 * n, 2); return last; }
NOINLINE uint64_t medium(uint64_t n) { last = leaf_medium(n); return last + 1; }
NOINLINE uint64_t light(uint64_t n) { last = spin(n, 3); return last; }

NOINLINE void run(uint64_t n) {
    sink += heavy(n);
    sink += medium(n);
    sink += light(n);
    last = 0;
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    double end = cpu_seconds() + seconds;
    uint64_t rounds = 0;
    do {
        run(20000);
        rounds++;
    } while (cpu_seconds() < end);
    printf("hot: %llu rounds\n", (unsigned long long)rounds);
    return 0;
}
