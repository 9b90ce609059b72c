/* kprof trace tests (issue #14): writes known sizes to /dev/null from one function, so that
 * counts, sums, filters and stacks have exact answers: 100 writes of 512 bytes, 50 of 8192 and
 * 10 of 65536 (160 writes, 1,116,160 bytes), all from emit_bytes on fd 3 when 0-2 are open.
 * With an argument N > 0 it repeats the whole series every N milliseconds until killed. */
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static char buffer[65536];

__attribute__((noinline)) void emit_bytes(int fd, size_t size) {
    if (write(fd, buffer, size) != (ssize_t)size) {
        _exit(2);
    }
}

__attribute__((noinline)) void write_series(int fd) {
    for (int i = 0; i < 100; i++) emit_bytes(fd, 512);
    for (int i = 0; i < 50; i++) emit_bytes(fd, 8192);
    for (int i = 0; i < 10; i++) emit_bytes(fd, 65536);
}

int main(int argc, char **argv) {
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0) return 1;
    long every_ms = argc > 1 ? atol(argv[1]) : 0;
    write_series(fd);
    while (every_ms > 0) {
        struct timespec pause = {every_ms / 1000, (every_ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
        write_series(fd);
    }
    return 0;
}
