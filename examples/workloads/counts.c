/* A workload whose event counts are known by construction, for checking `kprof stat`.
 *
 * Usage: counts ACTION N [ACTION N ...], actions done in order:
 *   getppid N       N getppid system calls (syscall(2) directly: libc never caches them)
 *   reads N         N one-byte read(2) calls on /dev/zero
 *   faults N        touch N fresh anonymous pages once each (no huge pages): N page faults
 *   sleeps N        N 200-microsecond nanosleeps: N voluntary context switches
 *   spin MS         burn MS milliseconds of this process's CPU time, then print that CPU
 *                   time in nanoseconds (CLOCK_PROCESS_CPUTIME_ID) on standard output
 *   paced MS        spread the next action over MS milliseconds, in 20 equal slices
 *   step FILE       read a run number k from FILE (0 when missing), store k + 1, and do the
 *                   next action's N times k (run k of a series does k*N of it)
 *   exit CODE       exit with CODE at once
 * Nothing else in the program makes getppid calls, so `syscalls:sys_enter_getppid` counts
 * exactly what was asked.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void pause_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void do_getppid(long n) {
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
}

static void do_reads(long n) {
    int fd = open("/dev/zero", O_RDONLY);
    char c;
    if (fd < 0) {
        perror("/dev/zero");
        exit(2);
    }
    for (long i = 0; i < n; i++)
        if (read(fd, &c, 1) != 1)
            exit(2);
    close(fd);
}

static void do_faults(long n) {
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    madvise(p, n * page, MADV_NOHUGEPAGE);
    for (long i = 0; i < n; i++)
        p[i * page] = 1;
    munmap(p, n * page);
}

static void do_sleeps(long n) {
    for (long i = 0; i < n; i++) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
}

static void do_spin(long ms) {
    volatile uint64_t x = 1;
    long until = cpu_ns() + ms * 1000000L;
    while (cpu_ns() < until)
        for (int i = 0; i < 10000; i++)
            x = x * 6364136223846793005ULL + 1;
    printf("%ld\n", cpu_ns());
    fflush(stdout);
}

static void run(const char *action, long n) {
    if (!strcmp(action, "getppid"))
        do_getppid(n);
    else if (!strcmp(action, "reads"))
        do_reads(n);
    else if (!strcmp(action, "faults"))
        do_faults(n);
    else if (!strcmp(action, "sleeps"))
        do_sleeps(n);
    else if (!strcmp(action, "spin"))
        do_spin(n);
    else {
        fprintf(stderr, "counts: unknown action %s\n", action);
        exit(2);
    }
}

static long step_count(const char *file) {
    long k = 0;
    FILE *f = fopen(file, "r");
    if (f) {
        if (fscanf(f, "%ld", &k) != 1)
            k = 0;
        fclose(f);
    }
    f = fopen(file, "w");
    if (!f) {
        perror(file);
        exit(2);
    }
    fprintf(f, "%ld\n", k + 1);
    fclose(f);
    return k;
}

int main(int argc, char **argv) {
    long pace_ms = 0, times = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *action = argv[i];
        if (!strcmp(action, "exit"))
            return atoi(argv[i + 1]);
        if (!strcmp(action, "paced")) {
            pace_ms = atol(argv[i + 1]);
            continue;
        }
        if (!strcmp(action, "step")) {
            times = step_count(argv[i + 1]);
            continue;
        }
        long n = atol(argv[i + 1]) * times;
        if (pace_ms > 0) {
            long done = 0;
            for (int slice = 1; slice <= 20; slice++) {
                long upto = n * slice / 20;
                run(action, upto - done);
                done = upto;
                pause_ms(pace_ms / 20);
            }
        } else {
            run(action, n);
        }
        pace_ms = 0;
        times = 1;
    }
    return 0;
}
