/* strutil.c — string copies for the library (strdup is POSIX, not C11). */
#include "base/strutil.h"

#include <stdlib.h>
#include <string.h>

char *mimo_strcat2(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (s) {
        memcpy(s, a, na);
        memcpy(s + na, b, nb + 1);
    }
    return s;
}

char *mimo_strdup(const char *s) { return mimo_strcat2(s, ""); }
