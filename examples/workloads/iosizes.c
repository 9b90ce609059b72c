/* A workload whose I/O sizes, latencies and syscalls are known by construction, for checking
 * `kprof trace` aggregations against bpftrace and perf trace (tests/trace_stats.rs).
 *
 * Usage: iosizes ACTION ARG [ACTION ARG ...], actions done in order:
 *   wait SIG         block until signal SIG (a number, e.g. 10 for SIGUSR1) arrives, so that
 *                    tracers can attach first; the wait itself is one rt_sigtimedwait call.
 *                    With IOSIZES_READY=FILE set, first writes this process's pid to FILE
 *                    (through a rename, so FILE appears whole) once the signal is blocked
 *   writes LIST      write(2) to /dev/null: LIST is SIZE:N,SIZE:N... (N writes of SIZE bytes)
 *   reads LIST       read(2) from /dev/zero, LIST as for writes (count = SIZE)
 *   piped LIST       reads that block: LIST is MS:N,... For each of the N, a child process
 *                    sleeps MS milliseconds and writes one byte into a pipe that this process
 *                    is blocked reading (a 1-byte read(2) that lasts MS ms)
 *   direct SPEC      FILE:SIZE:N: open FILE with O_DIRECT|O_CREAT|O_TRUNC, write N blocks of
 *                    SIZE bytes (aligned), fsync, close, unlink
 *   fails N          N open(2) calls of a missing path (N ENOENT errors)
 *   getppid N        N getppid calls
 *   exit CODE        exit_group(CODE) at once (a tracer may stop on it)
 * The process writes nothing else: its own write(2) and read(2) calls are exactly the lists.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *buffer;

static void fail(const char *what) {
    perror(what);
    exit(2);
}

/* Calls fn(size) N times for each SIZE:N of the list. */
static void each(const char *list, void (*fn)(long, long), long arg) {
    char *copy = strdup(list);
    for (char *item = strtok(copy, ","); item; item = strtok(NULL, ",")) {
        long size = 0, n = 0;
        if (sscanf(item, "%ld:%ld", &size, &n) != 2)
            fail("bad SIZE:N");
        for (long i = 0; i < n; i++)
            fn(size, arg);
    }
    free(copy);
}

static void write_one(long size, long fd) {
    if (write((int)fd, buffer, (size_t)size) != size)
        fail("write");
}

static void read_one(long size, long fd) {
    if (read((int)fd, buffer, (size_t)size) != size)
        fail("read");
}

static void piped_one(long ms, long unused) {
    (void)unused;
    int fds[2];
    if (pipe(fds) != 0)
        fail("pipe");
    pid_t child = fork();
    if (child < 0)
        fail("fork");
    if (child == 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0) {
        }
        if (write(fds[1], "x", 1) != 1)
            _exit(3);
        _exit(0);
    }
    char c;
    if (read(fds[0], &c, 1) != 1)
        fail("piped read");
    close(fds[0]);
    close(fds[1]);
    waitpid(child, NULL, 0);
}

static void direct(const char *spec) {
    char path[4096];
    long size = 0, n = 0;
    if (sscanf(spec, "%4095[^:]:%ld:%ld", path, &size, &n) != 3)
        fail("bad FILE:SIZE:N");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0600);
    if (fd < 0)
        fail(path);
    for (long i = 0; i < n; i++)
        if (write(fd, buffer, (size_t)size) != size)
            fail("direct write");
    fsync(fd);
    close(fd);
    unlink(path);
}

int main(int argc, char **argv) {
    /* 4 MiB, aligned for O_DIRECT. */
    if (posix_memalign((void **)&buffer, 4096, 4 << 20) != 0)
        fail("posix_memalign");
    memset(buffer, 'a', 4 << 20);
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *action = argv[i], *arg = argv[i + 1];
        if (strcmp(action, "wait") == 0) {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, atoi(arg));
            sigprocmask(SIG_BLOCK, &set, NULL);
            /* Tell whoever waits that the signal is now blocked (and so will be caught). */
            const char *ready = getenv("IOSIZES_READY");
            if (ready) {
                char tmp[4096];
                snprintf(tmp, sizeof tmp, "%s.tmp", ready);
                FILE *f = fopen(tmp, "w");
                if (!f)
                    fail(tmp);
                fprintf(f, "%d\n", (int)getpid());
                fclose(f);
                if (rename(tmp, ready) != 0)
                    fail(ready);
            }
            int sig;
            sigwait(&set, &sig);
        } else if (strcmp(action, "writes") == 0) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd < 0)
                fail("/dev/null");
            each(arg, write_one, fd);
            close(fd);
        } else if (strcmp(action, "reads") == 0) {
            int fd = open("/dev/zero", O_RDONLY);
            if (fd < 0)
                fail("/dev/zero");
            each(arg, read_one, fd);
            close(fd);
        } else if (strcmp(action, "piped") == 0) {
            each(arg, piped_one, 0);
        } else if (strcmp(action, "direct") == 0) {
            direct(arg);
        } else if (strcmp(action, "fails") == 0) {
            for (long k = atol(arg); k > 0; k--)
                if (open("/nonexistent/kprof-iosizes", O_RDONLY) >= 0)
                    fail("open of a missing path succeeded");
        } else if (strcmp(action, "exit") == 0) {
            exit(atoi(arg));
        } else if (strcmp(action, "getppid") == 0) {
            for (long k = atol(arg); k > 0; k--)
                syscall(SYS_getppid);
        } else {
            fprintf(stderr, "iosizes: unknown action %s\n", action);
            return 2;
        }
    }
    return 0;
}
