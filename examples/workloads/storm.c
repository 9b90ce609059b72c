/* kprof trace tests (issue #14): an event storm of a known size. `storm N` makes exactly N
 * write(2) calls of one byte to /dev/null (fd 3 when 0-2 are open) and nothing else that
 * writes, so a trace of sys_enter_write for it holds N events, received or lost.
 * `storm N PAUSE_MS ROUNDS` makes ROUNDS bursts of N writes, PAUSE_MS apart (N x ROUNDS). */
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0 || argc < 2) return 1;
    long n = atol(argv[1]);
    long pause_ms = argc > 2 ? atol(argv[2]) : 0;
    long rounds = argc > 3 ? atol(argv[3]) : 1;
    char byte = 'x';
    for (long r = 0; r < rounds; r++) {
        if (r > 0 && pause_ms > 0) {
            struct timespec pause = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
            nanosleep(&pause, NULL);
        }
        for (long i = 0; i < n; i++) {
            if (write(fd, &byte, 1) != 1) return 2;
        }
    }
    return 0;
}
