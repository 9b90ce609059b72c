/* kprof trace tests (issue #14): writes from a known call structure, for `--by stack`.
 * main calls left (30 writes) then right (70 writes); both write through emit, one byte to
 * /dev/null each time. Built with frame pointers, every write's user stack is
 * write <- emit <- left|right <- main (emit's own frame is hidden from a frame-pointer walk:
 * libc's write keeps no frame, so the walk goes from write's address to emit's caller). */
#include <fcntl.h>
#include <unistd.h>

static int fd;

__attribute__((noinline)) void emit(void) {
    char byte = 'x';
    if (write(fd, &byte, 1) != 1) _exit(2);
}

__attribute__((noinline)) void left(void) {
    for (int i = 0; i < 30; i++) emit();
}

__attribute__((noinline)) void right(void) {
    for (int i = 0; i < 70; i++) emit();
}

int main(void) {
    fd = open("/dev/null", O_WRONLY);
    if (fd < 0) return 1;
    left();
    right();
    /* Not a tail call: main stays on the stack of right's writes. */
    return close(fd);
}
