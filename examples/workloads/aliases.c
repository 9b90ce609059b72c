// Calls glibc functions that share their address with aliases (`malloc`/`__libc_malloc`,
// `memcpy`'s AVX implementation/`memmove`'s, `hypot`/`__hypot`), through volatile pointers so the
// compiler can neither inline nor drop them. kprof must name each as `perf report` does
// (issue #10 point 5).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *(*volatile allocate)(size_t) = malloc;
void (*volatile release)(void *) = free;
void *(*volatile copy)(void *, const void *, size_t) = memcpy;
double (*volatile hypotenuse)(double, double) = hypot;

static char source[1 << 16], target[1 << 16];

int main(int argc, char **argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 400000;
  double sum = 0;
  memset(source, 1, sizeof source);
  for (long i = 0; i < rounds; i++) {
    void *p = allocate(64 + (i & 255));
    sum += hypotenuse((double)i, 3.0);
    copy(target, source, 8192 + (i & 511));
    release(p);
  }
  printf("%f %d\n", sum, target[7]);
  return 0;
}
