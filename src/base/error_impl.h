/* error_impl.h — what the library's own code does with the last error
 * besides the public API (mimo/error.h): keep it across work that may
 * overwrite it, and make it the last error again afterwards. */
#ifndef MIMO_BASE_ERROR_IMPL_H
#define MIMO_BASE_ERROR_IMPL_H

#include "mimo/error.h"

/* The last error as it was: its message (as long as mimo_errmsg's) and
 * whether it was agreed across ranks. */
typedef struct mimo_error_saved {
    char msg[1024];
    int agreed;
} mimo_error_saved;

/* Copies the last error into s. For work after an error that must not
 * replace it (waiting for a writer, a probe that reads a file, writing
 * DIR/status): its own errors are not the ones to report. */
void mimo_error_save(mimo_error_saved *s);

/* Makes s the last error again, agreed if it was, and returns code. */
int mimo_error_restore(const mimo_error_saved *s, int code);

#endif
