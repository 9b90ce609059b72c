/* Probes across threads and processes (issue #15): `probe_threads THREADS CHILDREN CALLS` calls
 * `work(x)` CALLS times in each of THREADS threads, then in each of CHILDREN forked children
 * (one after another), then in the main thread itself, and prints the total,
 * `calls=(THREADS + CHILDREN + 1) * CALLS`, and the main thread's share, `main=CALLS`. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) long work(long x) {
    __asm__ volatile("" ::: "memory");
    return x * 3 + 1;
}

static long calls = 1000;

static void *calls_of_work(void *unused) {
    (void)unused;
    long sum = 0;
    for (long i = 0; i < calls; i++)
        sum += work(i);
    return (void *)sum;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: probe_threads THREADS CHILDREN CALLS\n");
        return 2;
    }
    int threads = atoi(argv[1]), children = atoi(argv[2]);
    calls = atol(argv[3]);
    if (threads < 0 || threads > 64 || children < 0)
        return 2;
    pthread_t started[64];
    for (int i = 0; i < threads; i++)
        pthread_create(&started[i], NULL, calls_of_work, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(started[i], NULL);
    for (int i = 0; i < children; i++) {
        pid_t child = fork();
        if (child == 0) {
            calls_of_work(NULL);
            _exit(0);
        }
        waitpid(child, NULL, 0);
    }
    calls_of_work(NULL);
    printf("calls=%ld main=%ld\n", (threads + children + 1) * calls, calls);
    return 0;
}
