/* Startup code for the embergpt Cortex-M firmware: vector table, reset handler
 * (copy .data, zero .bss, enable the FPU/MVE, paint the stack), fault handler,
 * and the stack high-water measurement. No vendor SDK. */
#include <stdint.h>

#include "firmware.h"
#include "semihost.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_limit[], __stack_top[];

int main(void);

#define STACK_PAINT 0x5afe57acu

void Reset_Handler(void);
static void Fault_Handler(void);

/* Cortex-M vector table: initial SP, reset, NMI, HardFault, MemManage, BusFault,
 * UsageFault, SecureFault (v8-M), reserved x3, SVC, DebugMon, reserved, PendSV, SysTick. */
__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)__stack_top,
    Reset_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    0, 0, 0,
    Fault_Handler, Fault_Handler, 0, Fault_Handler, Fault_Handler,
};

static void Fault_Handler(void) {
    sh_puts("FAIL: CPU fault\n");
    sh_exit(3);
}

/* Called by embergpt's panic handler (feature panic-handler); never expected. */
__attribute__((noreturn)) void abort(void) {
    sh_puts("FAIL: embergpt panicked (abort)\n");
    sh_exit(4);
}

__attribute__((noreturn, used)) static void reset_c(void) {
    /* Enable CP10/CP11 (FPU, and MVE on the M55) before any float code runs. */
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    for (uint32_t *s = __data_load, *d = __data_start; d < __data_end;)
        *d++ = *s++;
    for (uint32_t *d = __bss_start; d < __bss_end;)
        *d++ = 0;
    sh_exit((uint32_t)main());
}

/* Paints the whole stack below the current frame with STACK_PAINT, then runs
 * reset_c on the real stack. Naked: it runs before anything uses the stack. */
__attribute__((naked)) void Reset_Handler(void) {
    __asm__ volatile(
        "ldr r0, =__stack_limit\n\t"
        "ldr r1, =__stack_top\n\t"
        "ldr r2, =0x5afe57ac\n\t"
        "1: cmp r0, r1\n\t"
        "bhs 2f\n\t"
        "str r2, [r0], #4\n\t"
        "b 1b\n\t"
        "2: b reset_c\n\t");
}

size_t stack_high_water(void) {
    const uint32_t *p = __stack_limit;
    while (p < __stack_top && *p == STACK_PAINT)
        p++;
    return (size_t)((const uint8_t *)__stack_top - (const uint8_t *)p);
}

size_t stack_size(void) {
    return (size_t)((const uint8_t *)__stack_top - (const uint8_t *)__stack_limit);
}
