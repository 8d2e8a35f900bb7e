/* api.h — MIMO_API marks the public functions of libmimo: the shared
 * library is built with hidden visibility, so only what its headers in
 * include/mimo/ declare with MIMO_API is exported. */
#ifndef MIMO_API_H
#define MIMO_API_H

#if defined(__GNUC__)
#define MIMO_API __attribute__((visibility("default")))
#else
#define MIMO_API
#endif

#endif
