/* A workload that spends most of its time inside the C library, for kprof's benchmarks.
 *
 *   main -> run -> format_lines   (snprintf: vfprintf and its number formatting)
 *               -> sort_lines     (qsort with a strcmp comparator: msort, strcmp)
 *               -> copy_lines     (malloc, memcpy, strlen, free)
 *
 * Most samples land in libc, as in ordinary programs, so `--lines` has to read libc's
 * separate debug file (`libc6-dbg`, with compressed DWARF sections) as well as this program's.
 * Usage: strings [SECONDS]   (default 1.0; CPU time, measured with CLOCK_PROCESS_CPUTIME_ID,
 * so that a recording at a given rate has the same number of samples on a busy machine)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOINLINE __attribute__((noinline))
#define LINES 2000

static char *lines[LINES];
static volatile uint64_t sink;

NOINLINE static void format_lines(uint64_t round) {
    char buf[128];
    for (int i = 0; i < LINES; i++) {
        uint64_t x = (round + 1) * 2654435761u * (uint64_t)(i + 1);
        int n = snprintf(buf, sizeof buf, "%08llx line %d of round %llu: %.3f",
                         (unsigned long long)(x >> 16), i, (unsigned long long)round,
                         (double)(x % 100000) / 7.0);
        free(lines[i]);
        lines[i] = malloc((size_t)n + 1);
        memcpy(lines[i], buf, (size_t)n + 1);
    }
}

static int compare_lines(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

NOINLINE static void sort_lines(void) { qsort(lines, LINES, sizeof lines[0], compare_lines); }

NOINLINE static void copy_lines(void) {
    uint64_t total = 0;
    for (int i = 0; i < LINES; i++) {
        size_t n = strlen(lines[i]);
        char *copy = malloc(n + 1);
        memcpy(copy, lines[i], n + 1);
        total += (unsigned char)copy[n / 2];
        free(copy);
    }
    sink += total;
}

NOINLINE static void run(uint64_t round) {
    format_lines(round);
    sort_lines();
    copy_lines();
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    double end = now() + seconds;
    uint64_t rounds = 0;
    do {
        run(rounds);
        rounds++;
    } while (now() < end);
    for (int i = 0; i < LINES; i++) free(lines[i]);
    printf("strings: %llu rounds\n", (unsigned long long)rounds);
    return 0;
}
