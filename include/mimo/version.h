/* version.h — the version of libmimo, the one home of the number
 * (CMakeLists.txt reads it from here). MAJOR changes when a public name
 * is removed or changes meaning (the shared library's soname follows
 * it), MINOR when names are added, PATCH otherwise; while MAJOR is 0,
 * MINOR plays MAJOR's part (0.1 -> 0.2 removed the internals from the
 * installed headers). */
#ifndef MIMO_VERSION_H
#define MIMO_VERSION_H

#include "mimo/api.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MIMO_VERSION_MAJOR 0
#define MIMO_VERSION_MINOR 2
#define MIMO_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH: what the headers a program was
 * compiled with say; compare with mimo_version_number() at run time. */
#define MIMO_VERSION_NUMBER \
    (MIMO_VERSION_MAJOR * 10000 + MIMO_VERSION_MINOR * 100 + MIMO_VERSION_PATCH)

/* The library's version, e.g. "0.2.0", and as MIMO_VERSION_NUMBER counts
 * it: the library the program runs with, which may be newer than the
 * headers it was compiled with. */
MIMO_API const char *mimo_version(void);
MIMO_API int mimo_version_number(void);

#ifdef __cplusplus
}
#endif
#endif
