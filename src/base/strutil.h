/* strutil.h — the library's small string helpers (C11 has no strdup) and
 * an index of names for lookups by name in large graphs. */
#ifndef MIMO_STRUTIL_H
#define MIMO_STRUTIL_H

/* A malloc'd copy of s, or NULL when out of memory. */
char *mimo_strdup(const char *s);

/* A malloc'd a followed by b, or NULL when out of memory. */
char *mimo_strcat2(const char *a, const char *b);

/* Whether a and b name the same thing, Keras' way: case and underscores
 * do not matter (ReLU = relu, BatchNormalization = batch_normalization). */
int mimo_same_name(const char *a, const char *b);

/* Names to ids, sorted once (O(n log n)) and found by binary search
 * (O(log n)): what makes compiling a graph of 100k layers near-linear
 * where a scan per lookup was quadratic. The names are not copied: they
 * must outlive the index. Of equal names, the one added first is found
 * (as a scan in order would). */
typedef struct {
    const char *name;
    int id, order;
} mimo_name_entry;

typedef struct {
    mimo_name_entry *e;
    int n, cap;
} mimo_names;

/* Room for cap names; 0 or -1 when out of memory. */
int mimo_names_init(mimo_names *ix, int cap);
/* Adds (name, id) while fewer than cap are in; call sort before find. */
void mimo_names_add(mimo_names *ix, const char *name, int id);
void mimo_names_sort(mimo_names *ix);
/* The id of name, or -1. */
int mimo_names_find(const mimo_names *ix, const char *name);
void mimo_names_free(mimo_names *ix);

#endif
