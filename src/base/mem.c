/* mem.c — giving back the pages of a buffer not read for a while (mem.h). */
#define _DEFAULT_SOURCE /* madvise */
#include "base/mem.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

void mimo_mem_release(void *p, size_t bytes)
{
#ifdef MADV_DONTNEED
    long page = sysconf(_SC_PAGESIZE);
    if (!p || page <= 0)
        return;
    uintptr_t a = (uintptr_t)p, e = a + bytes, ps = (uintptr_t)page;
    uintptr_t lo = (a + ps - 1) / ps * ps, hi = e / ps * ps; /* whole pages */
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advice: may fail */
#else
    (void)p, (void)bytes;
#endif
}
