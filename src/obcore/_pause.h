/* A busy wait that keeps its CPU out of the idle state without touching memory.
 *
 * The pause hint (x86 `pause`, Arm `yield`) tells the core this is a spin loop: it saves
 * power and gives a hyperthread sibling the pipeline. The flag is read through a
 * volatile pointer, so every turn of the loop loads it again. */
#ifndef OBCORE_PAUSE_H
#define OBCORE_PAUSE_H

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#include <immintrin.h>
#define OB_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define OB_CPU_RELAX() __asm__ __volatile__("yield" ::: "memory")
#else
#define OB_CPU_RELAX() __asm__ __volatile__("" ::: "memory")
#endif

static inline void ob_pause_until_set(const unsigned char *flag)
{
    const volatile unsigned char *f = flag;
    while (!*f) {
        OB_CPU_RELAX();
    }
}

#endif
