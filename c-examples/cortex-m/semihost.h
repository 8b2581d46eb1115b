/* Arm semihosting (BKPT 0xAB on M-profile): text output and exit with a status.
 * QEMU implements it with -semihosting-config enable=on,target=native. */
#ifndef EMBERGPT_SEMIHOST_H
#define EMBERGPT_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

#define SYS_WRITE0 0x04u
#define SYS_EXIT 0x18u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static inline uintptr_t sh_call(uintptr_t op, const void *arg) {
    register uintptr_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* Print a NUL-terminated string on the host's stdout. */
static inline void sh_puts(const char *s) { (void)sh_call(SYS_WRITE0, s); }

/* End the program: the emulator exits with `status` (0 = success). */
static inline __attribute__((noreturn)) void sh_exit(uint32_t status) {
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, status};
    (void)sh_call(SYS_EXIT_EXTENDED, block);
    /* Hosts without SYS_EXIT_EXTENDED: plain SYS_EXIT (status 0 only). */
    (void)sh_call(SYS_EXIT, (const void *)(uintptr_t)ADP_STOPPED_APPLICATION_EXIT);
    for (;;) {
    }
}

#endif
