/* Probe tests and benches (issue #15): calls `work(x)` N times with arguments spread over many
 * log2 buckets and, unless the second argument is 0, mallocs (and frees) a size that varies with
 * each call. With a third argument `wait` it first prints `pid=N` and waits for SIGUSR1, so
 * tracers can attach to the same run before it starts. A fourth argument makes each call of
 * `work` spin for that many nanoseconds (latency tests). Prints a checksum at the end so the
 * calls cannot be optimized away, and the loop's own time (`loop_ns=`, for benches/probes.sh). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void *volatile sink;
static long long spin_ns;

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

__attribute__((noinline)) long work(long x) {
    __asm__ volatile("" ::: "memory");
    if (spin_ns > 0) {
        long long until = now_ns() + spin_ns;
        while (now_ns() < until)
            ;
    }
    return x * 3 + 1;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    int allocate = argc > 2 ? atoi(argv[2]) : 1;
    spin_ns = argc > 4 ? atoll(argv[4]) : 0;
    if (argc > 3 && strcmp(argv[3], "wait") == 0) {
        sigset_t go;
        int sig;
        sigemptyset(&go);
        sigaddset(&go, SIGUSR1);
        sigprocmask(SIG_BLOCK, &go, NULL);
        char line[32];
        int len = snprintf(line, sizeof line, "pid=%d\n", (int)getpid());
        if (write(1, line, (size_t)len) != len)
            return 1;
        sigwait(&go, &sig);
    }
    long sum = 0;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < n; i++) {
        sum += work((i * 7919) % 100000);
        if (allocate) {
            void *p = malloc(1 + (size_t)(i * 31) % 5000);
            sink = p;
            free(p);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    long long ns = (long long)(end.tv_sec - start.tv_sec) * 1000000000LL + (end.tv_nsec - start.tv_nsec);
    printf("sum=%ld loop_ns=%lld\n", sum, ns);
    return 0;
}
