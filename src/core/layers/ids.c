/* ids.c — what the kinds that read integer ids share (see ids.h). */
#include "core/layers/ids.h"

#include <stdio.h>
#include <tgmath.h>

#include "mimo/error.h"

int mimo_ids_input(const mimo_graph *g, const mimo_node *n, int k, int max_rank,
                   char *err, size_t len)
{
    const mimo_node *p = MIMO_PARENT(g, n, k);
    int ids = p->kind ? p->kind->ids_out != NULL
                      : g->spec->inputs[p->spec_index].dtype != MIMO_DTYPE_FLOAT32;
    if (!ids) {
        snprintf(err, len, "%s layer '%s' takes integer ids: its input "
                 "'%s' must be a model input with dtype: int32 or int64 (or "
                 "a hashing layer)", n->kind->name, n->name, p->name);
        return -1;
    }
    if (p->shape.rank > max_rank) {
        snprintf(err, len, "%s layer '%s': input '%s' has %d axes; ids "
                 "have at most %d", n->kind->name, n->name, p->name,
                 p->shape.rank, max_rank);
        return -1;
    }
    long long bins = p->kind ? p->kind->ids_out(p) : 0;
    long long bound = n->kind->id_bound ? n->kind->id_bound(n) : 0;
    if (bins > 0 && bound > 0 && bins > bound) {
        snprintf(err, len, "%s layer '%s': input_dim %lld is smaller than the "
                 "%lld bins of '%s' (its ids lie in [0, %lld))", n->kind->name,
                 n->name, bound, bins, p->name, bins);
        return -1;
    }
    return 0;
}

long mimo_ids_row(mimo_graph *g, const mimo_node *n, mimo_real v, int dim)
{
    if (v >= 0 && v < dim && v == floor(v))
        return (long)v;
    if (!g->fault)
        mimo_graph_fault(g, mimo_error(MIMO_EINVAL, "%s layer '%s': id %g "
                                       "is not an integer in [0, %d)",
                                       n->kind->name, n->name, (double)v, dim));
    return -1;
}

long mimo_ids_row_i64(mimo_graph *g, const mimo_node *n, int64_t v, int dim)
{
    if (v >= 0 && v < dim)
        return (long)v;
    if (!g->fault)
        mimo_graph_fault(g, mimo_error(MIMO_EINVAL, "%s layer '%s': id %lld "
                                       "is not in [0, %d)", n->kind->name,
                                       n->name, (long long)v, dim));
    return -1;
}
