/* version.h — the version of libmimo. */
#ifndef MIMO_VERSION_H
#define MIMO_VERSION_H

#include "mimo/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library version, e.g. "0.1.0". */
MIMO_API const char *mimo_version(void);

#ifdef __cplusplus
}
#endif
#endif
