/* adapt.c — a layer's statistics taken from the training data (`adapt:
 * from_data`, normalization): the state tensors `mean` and `variance` of
 * each such node set from /preprocessing/<input>/mean and variance of the
 * training file, where `mimo import csv --schema` stores the training
 * split's statistics of each numeric dataset. Every rank reads the same
 * file, so every rank sets the same values. */
#include "io/dataset_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kind.h"
#include "io/h5_impl.h"
#include "mimo/error.h"

/* The index of node n's tensor `name`, or -1. */
static int tensor_of(const mimo_node *n, const char *name)
{
    for (int t = 0; t < n->n_tensors; t++)
        if (strcmp(n->tensors[t].name, name) == 0)
            return t;
    return -1;
}

/* /preprocessing/<input>/<what> (c values) into the tensor `what` of n. */
static int adapt_one(hid_t f, const char *path, const mimo_node *n,
                     const char *input, const char *what, mimo_real *params)
{
    char obj[512];
    snprintf(obj, sizeof obj, "preprocessing/%s/%s", input, what);
    int t = tensor_of(n, what);
    if (t < 0)
        return mimo_error(MIMO_EINVAL, "layer '%s' has no tensor '%s'", n->name,
                          what);
    if (!mimo_h5_exists(f, obj))
        return mimo_error(MIMO_EINVAL, "%s has no /%s, which layer '%s' (adapt: "
                          "from_data) needs: the statistics `mimo import csv "
                          "--schema` stores for a numeric dataset '%s'", path,
                          obj, n->name, input);
    double *v = NULL;
    size_t k = 0;
    int rc = mimo_h5_read_f64(f, path, obj, &v, &k);
    if (!rc && k != n->tensors[t].size)
        rc = mimo_error(MIMO_EINVAL, "%s: /%s has %zu values, layer '%s' "
                        "normalizes %zu features", path, obj, k, n->name,
                        n->tensors[t].size);
    for (size_t j = 0; !rc && j < k; j++) {
        if (!isfinite(v[j]) || (!strcmp(what, "variance") && v[j] < 0))
            rc = mimo_error(MIMO_EINVAL, "%s: /%s[%zu] is %g: no statistic (a "
                            "column empty in every training row?)", path, obj,
                            j, v[j]);
        else
            params[n->tensors[t].off + j] = (mimo_real)v[j];
    }
    free(v);
    return rc;
}

int mimo_data_adapt(const char *path, mimo_model *m, int *count)
{
    mimo_graph *g = mimo_model_graph(m);
    mimo_real *params = mimo_model_params(m);
    int rc = 0;
    hid_t f = -1;
    *count = 0;
    for (int i = 0; i < g->n_nodes && !rc; i++) {
        const mimo_node *n = &g->nodes[i];
        if (!n->kind || !n->kind->from_data || !n->kind->from_data(n))
            continue;
        if (f < 0 && (f = mimo_h5_open_read(path, H5P_DEFAULT)) < 0)
            return (int)f;
        const char *input = MIMO_PARENT(g, n, 0)->name;
        rc = adapt_one(f, path, n, input, "mean", params);
        if (!rc)
            rc = adapt_one(f, path, n, input, "variance", params);
        ++*count;
    }
    if (f >= 0)
        H5Fclose(f);
    return rc;
}
