/* error.c — the last-error message of libmimo (one per thread).
 * Library code records what went wrong and where with mimo_error() and
 * returns the code; callers decide whether to print, retry or abort.
 *
 * Part base (src/base/): errors, strings, files, the clock, the PRNG; it
 * uses nothing else of mimo and everything may use it.
 */
#include "base/error_impl.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char errmsg[1024];
static _Thread_local int agreed;

int mimo_error(int code, const char *fmt, ...)
{
    va_list ap;
    agreed = 0;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
    return code;
}

const char *mimo_errmsg(void) { return errmsg; }

void mimo_error_clear(void) { errmsg[0] = '\0', agreed = 0; }

int mimo_error_agreed(void) { return agreed; }
void mimo_error_set_agreed(void) { agreed = 1; }

void mimo_error_save(mimo_error_saved *s)
{
    snprintf(s->msg, sizeof s->msg, "%s", errmsg);
    s->agreed = agreed;
}

int mimo_error_restore(const mimo_error_saved *s, int code)
{
    mimo_error(code, "%s", s->msg);
    agreed = s->agreed;
    return code;
}
