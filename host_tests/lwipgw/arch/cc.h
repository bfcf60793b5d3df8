/* Compiler/platform glue for lwIP on Linux (gcc, x86-64 or any glibc host). */
#ifndef LWIPGW_ARCH_CC_H
#define LWIPGW_ARCH_CC_H

#include <stdio.h>
#include <stdlib.h>

/* glibc's <endian.h> (pulled in by <stdlib.h>) already defines BYTE_ORDER
 * and LITTLE_ENDIAN the way lwIP's arch.h expects. */

#define LWIP_PLATFORM_DIAG(x) do { printf x; fflush(stdout); } while (0)
/* An lwIP assertion means the emulator itself is broken: stop loudly so a
 * test fails instead of measuring a half-dead stack. */
#define LWIP_PLATFORM_ASSERT(x) do { \
    fprintf(stderr, "lwipgw: lwIP assertion \"%s\" failed at %s:%d\n", x, __FILE__, __LINE__); \
    fflush(NULL); abort(); } while (0)

#endif /* LWIPGW_ARCH_CC_H */
