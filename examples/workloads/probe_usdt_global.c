/* USDT operands that are globals (`-8@answer(%rip)`, issue #15). `probe_usdt_global VALUE`
 * sets two globals from VALUE (`answer` = VALUE, the file-local `half` = -VALUE / 2), prints
 * `ready`, and fires `demo:global` with both globals as its arguments every millisecond until
 * its standard input closes; then it prints `fired N`. The globals never change, so a tracer
 * that reads them from the live process must see exactly these values. Build with -O2, where
 * gcc passes the globals as memory operands (`-8@answer(%rip) -4@half(%rip)`). */
#include <poll.h>
#include <sys/sdt.h>
#include <stdio.h>
#include <stdlib.h>

long answer;
static int half;

__attribute__((noinline)) void set_globals(long value) {
    answer = value;
    half = (int)(-value / 2);
}

__attribute__((noinline)) void fire(void) { STAP_PROBE2(demo, global, answer, half); }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: probe_usdt_global VALUE\n");
        return 2;
    }
    set_globals(atol(argv[1]));
    printf("ready\n");
    fflush(stdout);
    struct pollfd input = {.fd = 0, .events = POLLIN};
    long fired = 0;
    while (poll(&input, 1, 1) == 0) {
        fire();
        fired++;
    }
    printf("fired %ld\n", fired);
    return 0;
}
