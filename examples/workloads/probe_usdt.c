/* USDT probe tests (issue #15), built with probe_usdt_guarded.c. `demo:plain` fires on every
 * step with four arguments of different operand kinds (register, immediate, stack memory,
 * negative register); `demo:guarded` fires only while its semaphore is set (someone traces it).
 * `probe_usdt N` runs N steps and prints its own counts; `probe_usdt loop` runs until killed and
 * prints `semaphore=0|1` whenever the semaphore changes. */
#include <sys/sdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int guarded_enabled(void);
void fire_guarded(long i);
long global_value = 77;

__attribute__((noinline)) void step(int i, long *plain, long *guarded) {
    volatile long on_stack = -3L * i;
    int negative = -i;
    STAP_PROBE4(demo, plain, i, 5, on_stack, negative);
    *plain += 1;
    if (guarded_enabled()) {
        fire_guarded(i);
        *guarded += 1;
    }
}

int main(int argc, char **argv) {
    long plain = 0, guarded = 0;
    if (argc > 1 && strcmp(argv[1], "loop") == 0) {
        int last = -1;
        struct timespec pause = {0, 1000000};
        for (int i = 0;; i++) {
            int now = guarded_enabled();
            if (now != last) {
                printf("semaphore=%d\n", now);
                fflush(stdout);
                last = now;
            }
            step(i, &plain, &guarded);
            nanosleep(&pause, NULL);
        }
    }
    long n = argc > 1 ? atol(argv[1]) : 10;
    for (long i = 0; i < n; i++)
        step((int)i, &plain, &guarded);
    printf("pid=%d plain=%ld guarded=%ld\n", getpid(), plain, guarded);
    return 0;
}
