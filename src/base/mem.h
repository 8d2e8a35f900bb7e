/* mem.h — memory a process holds but no longer reads. */
#ifndef MIMO_BASE_MEM_H
#define MIMO_BASE_MEM_H

#include <stddef.h>

/* Gives the pages wholly inside [p, p + bytes) back to the system: they
 * read as zeros afterwards (Linux: madvise MADV_DONTNEED on private
 * anonymous memory, what a large malloc is), and cost nothing until
 * written again. For a buffer whose values live elsewhere for a while
 * (node-shared parameters) and are copied back before it is read. A
 * no-op where the system has no such call. */
void mimo_mem_release(void *p, size_t bytes);

#endif
