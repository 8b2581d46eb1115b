#ifndef EMBERGPT_FIRMWARE_H
#define EMBERGPT_FIRMWARE_H
#include <stddef.h>
/* Bytes of stack ever used (the painted stack's high-water mark). */
size_t stack_high_water(void);
/* Bytes reserved for the stack. */
size_t stack_size(void);
#endif
