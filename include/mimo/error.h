/* error.h — status codes and the last-error message of libmimo.
 * Every library function that can fail returns 0 or a negative MIMO_E*
 * code and leaves a message (what and where) readable with mimo_errmsg().
 * No library code prints, exits or aborts. */
#ifndef MIMO_ERROR_H
#define MIMO_ERROR_H

#include "mimo/api.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    MIMO_OK = 0,
    MIMO_EINVAL = -1,   /* bad argument, value or config */
    MIMO_ENOMEM = -2,   /* allocation failed or size overflow */
    MIMO_EIO = -3,      /* file could not be read or written */
    MIMO_ESHAPE = -4,   /* shape mismatch */
    MIMO_ENUM = -5,     /* NaN or Inf met */
    MIMO_EMPI = -6,     /* an MPI call failed */
    MIMO_EPEER = -7     /* another rank failed (and reported why) */
};

/* Records a printf-style message as the last error and returns code. */
MIMO_API int mimo_error(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The last error message ("" if none). Owned by the library; don't free(). */
MIMO_API const char *mimo_errmsg(void);

/* Clears the last error message. */
MIMO_API void mimo_error_clear(void);

/* Whether the last error was agreed across ranks (mimo_agree): every rank
 * knows the job failed, so they may all exit normally instead of
 * aborting. A new error clears it. */
MIMO_API int mimo_error_agreed(void);
MIMO_API void mimo_error_set_agreed(void);

#ifdef __cplusplus
}
#endif
#endif
