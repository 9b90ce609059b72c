/* The semaphore-guarded USDT probe of probe_usdt.c (issue #15). <sys/sdt.h> gives every probe
 * of a file a semaphore when _SDT_HAS_SEMAPHORES is set, so the guarded one lives here. */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

unsigned short demo_guarded_semaphore __attribute__((section(".probes")));
extern long global_value;

int guarded_enabled(void) { return demo_guarded_semaphore != 0; }

__attribute__((noinline)) void fire_guarded(long i) {
    STAP_PROBE2(demo, guarded, i * 1000, global_value);
}
