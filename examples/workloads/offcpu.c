// Threads that spend known time off the CPU, each way the scheduler tells apart (issue #16):
// every worker computes for COMPUTE_NS of CPU time (preempted on a busy machine: R), sleeps
// SLEEP_STEPS x 5 ms (S), blocks PIPE_WAIT_NS on a pipe that its writer thread fills from
// `pipe_writer_fn` (S, woken by the writer), and, where the file system takes O_DIRECT, writes
// and fdatasyncs 1 MiB blocks for about FSYNC_BUDGET_NS (D). Each phase is measured by the
// program itself (CLOCK_MONOTONIC wall time and CLOCK_THREAD_CPUTIME_ID CPU time): off-CPU
// time of a phase = wall - CPU. Blocking calls are raw system calls inside the named
// functions, so that frame-pointer stacks reach them without glibc's help.
//
// The fsync phase stops after FSYNC_MAX_CALLS calls even within its budget: on a fast disk it
// would make thousands of intervals of some microseconds, each a switch record (8 KiB with a
// DWARF stack copy) that a busy machine's late reader may lose.
//
// Usage: offcpu DIR [--linger] [--contend]   (DIR: where the O_DIRECT file goes; --linger:
// after printing the results and `ready`, wait for standard input to close before exiting, so
// that a tracer can read the process's symbols; --contend: the workers compute on one CPU,
// together, so that each is preempted for about COMPUTE_NS whatever else the machine runs.)
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 2
#define COMPUTE_NS 1000000000LL
#define SLEEP_STEPS 100
#define SLEEP_STEP_NS 5000000LL
#define PIPE_WAIT_NS 300000000LL
#define FSYNC_BUDGET_NS 200000000LL
#define FSYNC_MAX_CALLS 400
#define BLOCK (1024 * 1024)

#if defined(__x86_64__)
static inline __attribute__((always_inline)) long raw3(long n, long a, long b, long c) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}
static inline __attribute__((always_inline)) long raw4(long n, long a, long b, long c, long d) {
  long ret;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                   : "rcx", "r11", "memory");
  return ret;
}
#else
#define raw3(n, a, b, c) syscall((n), (a), (b), (c))
#define raw4(n, a, b, c, d) syscall((n), (a), (b), (c), (d))
#endif

static long long now_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct phase {
  long long wall, cpu;
};

struct worker {
  int data[2], go[2];
  const char *dir;
  int index;
  pid_t tid, writer_tid;
  long long lifetime, writer_lifetime;
  struct phase compute, sleep, pipe, fsync;
  int direct_io;
};

static void begin(struct phase *p) {
  p->wall = -now_ns(CLOCK_MONOTONIC);
  p->cpu = -now_ns(CLOCK_THREAD_CPUTIME_ID);
}

static void end(struct phase *p) {
  p->wall += now_ns(CLOCK_MONOTONIC);
  p->cpu += now_ns(CLOCK_THREAD_CPUTIME_ID);
}

static volatile unsigned long sink;
static int contend;

// With --contend: puts the calling thread on the first CPU it may run on; 1 when it did, with
// `saved` what it had.
static int share_one_cpu(cpu_set_t *saved) {
  cpu_set_t one;
  CPU_ZERO(&one);
  if (sched_getaffinity(0, sizeof *saved, saved) != 0) return 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, saved)) {
      CPU_SET(cpu, &one);
      return sched_setaffinity(0, sizeof one, &one) == 0;
    }
  }
  return 0;
}

__attribute__((noinline)) void compute_phase(void) {
  long long start = now_ns(CLOCK_THREAD_CPUTIME_ID);
  unsigned long x = 1;
  while (now_ns(CLOCK_THREAD_CPUTIME_ID) - start < COMPUTE_NS) {
    for (int i = 0; i < 10000; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
  }
  sink = x;
}

__attribute__((noinline)) void sleep_step(void) {
  struct timespec ts = {0, SLEEP_STEP_NS};
  raw4(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, (long)&ts, 0);
}

__attribute__((noinline)) void sleep_phase(void) {
  for (int i = 0; i < SLEEP_STEPS; i++) sleep_step();
}

__attribute__((noinline)) void pipe_phase(struct worker *w) {
  char byte = 1;
  raw3(SYS_write, w->go[1], (long)&byte, 1);
  raw3(SYS_read, w->data[0], (long)&byte, 1);
}

// Waits for its worker's go, sleeps PIPE_WAIT_NS, then writes the byte the worker waits for.
__attribute__((noinline)) void pipe_writer_fn(struct worker *w) {
  char byte;
  raw3(SYS_read, w->go[0], (long)&byte, 1);
  struct timespec ts = {0, PIPE_WAIT_NS};
  raw4(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, (long)&ts, 0);
  raw3(SYS_write, w->data[1], (long)&byte, 1);
}

__attribute__((noinline)) void fsync_direct(int fd, void *block) {
  raw4(SYS_pwrite64, fd, (long)block, BLOCK, 0);
  raw3(SYS_fdatasync, fd, 0, 0);
}

__attribute__((noinline)) void fsync_phase(struct worker *w) {
  char path[4096];
  snprintf(path, sizeof path, "%s/offcpu-direct-%d-%d", w->dir, (int)getpid(), w->index);
  int fd = open(path, O_CREAT | O_RDWR | O_DIRECT | O_TRUNC, 0600);
  void *block = NULL;
  if (fd < 0 || posix_memalign(&block, BLOCK, BLOCK) != 0) {
    if (fd >= 0) close(fd);
    unlink(path);
    return;
  }
  memset(block, 7, BLOCK);
  // Probe once: a file system without O_DIRECT fails the write with EINVAL.
  if (pwrite(fd, block, BLOCK, 0) != BLOCK) {
    close(fd);
    unlink(path);
    free(block);
    return;
  }
  w->direct_io = 1;
  long long start = now_ns(CLOCK_MONOTONIC);
  for (int calls = 0; calls < FSYNC_MAX_CALLS && now_ns(CLOCK_MONOTONIC) - start < FSYNC_BUDGET_NS;
       calls++)
    fsync_direct(fd, block);
  close(fd);
  unlink(path);
  free(block);
}

static void *writer_main(void *arg) {
  struct worker *w = arg;
  long long start = now_ns(CLOCK_MONOTONIC);
  w->writer_tid = (pid_t)syscall(SYS_gettid);
  pipe_writer_fn(w);
  w->writer_lifetime = now_ns(CLOCK_MONOTONIC) - start;
  return NULL;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  long long start = now_ns(CLOCK_MONOTONIC);
  w->tid = (pid_t)syscall(SYS_gettid);
  cpu_set_t saved;
  int pinned = contend && share_one_cpu(&saved);
  begin(&w->compute);
  compute_phase();
  end(&w->compute);
  if (pinned) sched_setaffinity(0, sizeof saved, &saved);
  begin(&w->sleep);
  sleep_phase();
  end(&w->sleep);
  begin(&w->pipe);
  pipe_phase(w);
  end(&w->pipe);
  begin(&w->fsync);
  fsync_phase(w);
  end(&w->fsync);
  w->lifetime = now_ns(CLOCK_MONOTONIC) - start;
  return NULL;
}

int main(int argc, char **argv) {
  long long start = now_ns(CLOCK_MONOTONIC);
  const char *dir = argc > 1 ? argv[1] : ".";
  int linger = 0;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--linger") == 0) linger = 1;
    if (strcmp(argv[i], "--contend") == 0) contend = 1;
  }
  struct worker workers[WORKERS];
  pthread_t threads[2 * WORKERS];
  memset(workers, 0, sizeof workers);
  for (int i = 0; i < WORKERS; i++) {
    workers[i].dir = dir;
    workers[i].index = i;
    if (pipe(workers[i].data) != 0 || pipe(workers[i].go) != 0) return 1;
    pthread_create(&threads[2 * i], NULL, writer_main, &workers[i]);
    pthread_create(&threads[2 * i + 1], NULL, worker_main, &workers[i]);
  }
  for (int i = 0; i < 2 * WORKERS; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < WORKERS; i++) {
    struct worker *w = &workers[i];
    printf("worker tid=%d lifetime=%lld compute_wall=%lld compute_cpu=%lld sleep_wall=%lld "
           "sleep_cpu=%lld pipe_wall=%lld pipe_cpu=%lld fsync_wall=%lld fsync_cpu=%lld "
           "direct_io=%d\n",
           (int)w->tid, w->lifetime, w->compute.wall, w->compute.cpu, w->sleep.wall, w->sleep.cpu,
           w->pipe.wall, w->pipe.cpu, w->fsync.wall, w->fsync.cpu, w->direct_io);
    printf("writer tid=%d lifetime=%lld\n", (int)w->writer_tid, w->writer_lifetime);
  }
  printf("ready\n");
  fflush(stdout);
  if (linger) {
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
  }
  printf("main tid=%d lifetime=%lld\n", (int)getpid(), now_ns(CLOCK_MONOTONIC) - start);
  return 0;
}
