/* strutil.c — string copies for the library (strdup is POSIX, not C11),
 * names compared Keras' way, and the sorted index of names (strutil.h). */
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

int mimo_same_name(const char *a, const char *b)
{
    for (;;) {
        while (*a == '_')
            a++;
        while (*b == '_')
            b++;
        if (!*a || !*b)
            return !*a && !*b;
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a - 'A' + 'a') : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b - 'A' + 'a') : *b;
        if (x != y)
            return 0;
        a++, b++;
    }
}

int mimo_names_init(mimo_names *ix, int cap)
{
    ix->n = 0;
    ix->cap = cap > 0 ? cap : 0;
    ix->e = malloc(sizeof *ix->e * (size_t)(ix->cap ? ix->cap : 1));
    return ix->e ? 0 : -1;
}

void mimo_names_add(mimo_names *ix, const char *name, int id)
{
    if (ix->n < ix->cap)
        ix->e[ix->n] = (mimo_name_entry){name, id, ix->n}, ix->n++;
}

static int by_name(const void *pa, const void *pb)
{
    const mimo_name_entry *a = pa, *b = pb;
    int r = strcmp(a->name, b->name);
    return r ? r : (a->order > b->order) - (a->order < b->order);
}

void mimo_names_sort(mimo_names *ix)
{
    qsort(ix->e, (size_t)ix->n, sizeof *ix->e, by_name);
}

int mimo_names_find(const mimo_names *ix, const char *name)
{
    int lo = 0, hi = ix->n; /* the first entry not below name */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(ix->e[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ix->n && strcmp(ix->e[lo].name, name) == 0 ? ix->e[lo].id : -1;
}

void mimo_names_free(mimo_names *ix)
{
    free(ix->e);
    ix->e = NULL;
    ix->n = ix->cap = 0;
}
