/* strutil.h — the library's small string helpers (C11 has no strdup). */
#ifndef MIMO_STRUTIL_H
#define MIMO_STRUTIL_H

/* A malloc'd copy of s, or NULL when out of memory. */
char *mimo_strdup(const char *s);

/* A malloc'd a followed by b, or NULL when out of memory. */
char *mimo_strcat2(const char *a, const char *b);

#endif
