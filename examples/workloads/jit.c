/* A tiny "JIT" for tests: copies a spin loop into anonymous executable memory twice and
 * describes both copies in /tmp/perf-PID.map, the file perf and kprof read JIT symbols from.
 * The names are hostile on purpose (markup that must show as text in an SVG).
 *
 * Usage: jit [SECONDS]   x86_64 only (the loop is raw machine code). SECONDS of CPU time, not
 * wall time, so a recording holds the same number of samples however busy the machine is.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* mov rcx, rdi; 1: dec rcx; jnz 1b; ret */
static const unsigned char loop_code[] = {0x48, 0x89, 0xf9, 0x48, 0xff, 0xc9, 0x75, 0xfb, 0xc3};

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
#if !defined(__x86_64__)
    fprintf(stderr, "jit: x86_64 only\n");
    return 2;
#endif
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    unsigned char *mem = mmap(0, 8192, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) { perror("mmap"); return 1; }
    memcpy(mem, loop_code, sizeof loop_code);
    memcpy(mem + 4096, loop_code, sizeof loop_code);
    char path[64];
    snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
    FILE *map = fopen(path, "w");
    if (!map) { perror(path); return 1; }
    fprintf(map, "%lx %zx <script>alert(1)</script>\n", (unsigned long)mem, sizeof loop_code);
    fprintf(map, "%lx %zx std::vector<int>::push_back\n", (unsigned long)(mem + 4096), sizeof loop_code);
    fclose(map);
    void (*first)(long) = (void (*)(long))mem;
    void (*second)(long) = (void (*)(long))(mem + 4096);
    double end = cpu_seconds() + seconds;
    do {
        first(2000000);
        second(1000000);
    } while (cpu_seconds() < end);
    printf("jit: done, map in %s\n", path);
    return 0;
}
