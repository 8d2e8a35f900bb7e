/* onnx.c — the ONNX file of a compiled graph (io/onnx.h): the builder the
 * kinds write their operators through (core/onnx.h), implemented over
 * the C structures protoc-c generates from ONNX's own onnx.proto
 * (Debian's libonnx-dev; the file is packed by libprotobuf-c, never
 * encoded by hand), and the walk of the graph that names the graph's
 * inputs and heads as mimo does.
 *
 * Every allocation of an export is kept in one list and freed together;
 * an allocation that fails marks the writer failed, its operators return
 * NULL and the export ends with MIMO_ENOMEM. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "io/onnx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

#include "base/fsutil.h"
#include "core/kind.h"
#include "core/onnx.h"
#include "mimo/error.h"
#include "mimo/version.h"

typedef struct {
    void **v;
    size_t n, cap;
} list;

typedef struct {
    mimo_onnx b;           /* what the kinds see (first member) */
    const char *layer;     /* the layer being written: names its values */
    int counter;           /* makes names unique */
    int failed;            /* an allocation failed */
    list owned;            /* every allocation, freed at the end */
    list nodes, inits;     /* Onnx__NodeProto *, Onnx__TensorProto * */
} writer;

static int push(list *l, void *p)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        void **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = p;
    return 0;
}

/* p kept for the final free; NULL (and the writer failed) without it. */
static void *own(writer *w, void *p)
{
    if (p && !push(&w->owned, p))
        return p;
    free(p);
    w->failed = 1;
    return NULL;
}

static void *alloc(writer *w, size_t n, size_t size)
{
    return own(w, calloc(n ? n : 1, size));
}

/* "<layer>/<what>_<k>", unique in the file. */
static char *fresh_name(writer *w, const char *what)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s/%s_%d", w->layer, what, w->counter++);
    return own(w, strdup(buf));
}

static Onnx__AttributeProto *attribute(writer *w, const mimo_onnx_attr *a)
{
    Onnx__AttributeProto *p = alloc(w, 1, sizeof *p);
    if (!p)
        return NULL;
    onnx__attribute_proto__init(p);
    p->name = (char *)a->name;
    p->has_type = 1;
    switch (a->type) {
    case MIMO_ONNX_INT:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        p->has_i = 1, p->i = a->i;
        break;
    case MIMO_ONNX_FLOAT:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
        p->has_f = 1, p->f = (float)a->f;
        break;
    case MIMO_ONNX_INTS:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
        if (!(p->ints = alloc(w, (size_t)a->n, sizeof *p->ints)))
            return NULL;
        for (int k = 0; k < a->n; k++)
            p->ints[k] = a->ints[k];
        p->n_ints = (size_t)a->n;
        break;
    case MIMO_ONNX_STRING:
        p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        p->has_s = 1;
        p->s.data = (uint8_t *)a->s, p->s.len = strlen(a->s);
        break;
    }
    return p;
}

/* An operator whose output is named out (NULL: a fresh name). */
static const char *add_node(writer *w, const char *op, const char *const *in,
                            int n_in, const mimo_onnx_attr *attrs, int n_attrs,
                            const char *out)
{
    Onnx__NodeProto *nd = w->failed ? NULL : alloc(w, 1, sizeof *nd);
    if (!nd)
        return NULL;
    onnx__node_proto__init(nd);
    nd->op_type = (char *)op;
    nd->name = fresh_name(w, op);
    nd->input = alloc(w, (size_t)n_in, sizeof *nd->input);
    nd->output = alloc(w, 1, sizeof *nd->output);
    nd->attribute = alloc(w, (size_t)n_attrs, sizeof *nd->attribute);
    char *y = out ? (char *)out : fresh_name(w, "out");
    if (!nd->name || !nd->input || !nd->output || !nd->attribute || !y)
        return NULL;
    for (int k = 0; k < n_in; k++) {
        if (!in[k])
            return NULL; /* an input's operator failed */
        nd->input[k] = (char *)in[k];
    }
    nd->n_input = (size_t)n_in;
    nd->output[0] = y, nd->n_output = 1;
    for (int k = 0; k < n_attrs; k++)
        if (!(nd->attribute[k] = attribute(w, &attrs[k])))
            return NULL;
    nd->n_attribute = (size_t)n_attrs;
    if (push(&w->nodes, nd)) {
        w->failed = 1;
        return NULL;
    }
    return y;
}

static const char *b_op(mimo_onnx *x, const char *op, const char *const *in,
                        int n_in, const mimo_onnx_attr *attrs, int n_attrs)
{
    return add_node((writer *)x, op, in, n_in, attrs, n_attrs, NULL);
}

/* An initializer of n elements of elem_size bytes from data. */
static const char *initializer(writer *w, const char *hint, int type,
                               const void *data, size_t elem_size,
                               const long long *dims, int rank)
{
    size_t n = 1;
    for (int a = 0; a < rank; a++)
        n *= (size_t)dims[a];
    Onnx__TensorProto *t = w->failed ? NULL : alloc(w, 1, sizeof *t);
    if (!t)
        return NULL;
    onnx__tensor_proto__init(t);
    t->name = fresh_name(w, hint);
    t->dims = alloc(w, (size_t)rank, sizeof *t->dims);
    uint8_t *raw = alloc(w, n, elem_size);
    if (!t->name || !t->dims || !raw)
        return NULL;
    for (int a = 0; a < rank; a++)
        t->dims[a] = dims[a];
    t->n_dims = (size_t)rank;
    t->has_data_type = 1, t->data_type = type;
    memcpy(raw, data, n * elem_size); /* little-endian, as ONNX stores it */
    t->has_raw_data = 1, t->raw_data.data = raw, t->raw_data.len = n * elem_size;
    if (push(&w->inits, t)) {
        w->failed = 1;
        return NULL;
    }
    return t->name;
}

static const char *b_constant(mimo_onnx *x, const char *hint, const mimo_real *v,
                              const long long *dims, int rank)
{
    writer *w = (writer *)x;
    size_t n = 1;
    for (int a = 0; a < rank; a++)
        n *= (size_t)dims[a];
    float *f = malloc(n * sizeof *f); /* float32 whatever mimo_real is */
    if (!f) {
        w->failed = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        f[i] = (float)v[i];
    const char *name = initializer(w, hint, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, f,
                                   sizeof *f, dims, rank);
    free(f);
    return name;
}

static const char *b_constant_i64(mimo_onnx *x, const char *hint,
                                  const long long *v, int n)
{
    int64_t buf[64]; /* shapes, axes, and hashing's tables (32 powers of 2) */
    long long dims = n;
    if (n > (int)(sizeof buf / sizeof *buf))
        return NULL;
    for (int k = 0; k < (n ? n : 1); k++)
        buf[k] = v[k];
    return initializer((writer *)x, hint, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, buf,
                       sizeof *buf, &dims, n ? 1 : 0);
}

/* A graph input or output: type, then (N, dims...). */
static Onnx__ValueInfoProto *value_info(writer *w, const char *name, int type,
                                        const mimo_shape *s)
{
    Onnx__ValueInfoProto *v = alloc(w, 1, sizeof *v);
    Onnx__TypeProto *t = alloc(w, 1, sizeof *t);
    Onnx__TypeProto__Tensor *tt = alloc(w, 1, sizeof *tt);
    Onnx__TensorShapeProto *sh = alloc(w, 1, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **d = alloc(w, (size_t)s->rank + 1, sizeof *d);
    if (!v || !t || !tt || !sh || !d)
        return NULL;
    for (int a = 0; a <= s->rank; a++) {
        if (!(d[a] = alloc(w, 1, sizeof *d[a])))
            return NULL;
        onnx__tensor_shape_proto__dimension__init(d[a]);
        if (a == 0) {
            d[a]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d[a]->dim_param = "N";
        } else {
            d[a]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d[a]->dim_value = s->dim[a - 1];
        }
    }
    onnx__tensor_shape_proto__init(sh);
    sh->dim = d, sh->n_dim = (size_t)s->rank + 1;
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1, tt->elem_type = type, tt->shape = sh;
    onnx__type_proto__init(t);
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, t->tensor_type = tt;
    onnx__value_info_proto__init(v);
    v->name = (char *)name, v->type = t;
    return v;
}

/* The value node k's consumer c reads: an integer input's ids (int32,
 * int64) themselves for a kind that reads ids, else its float32 view (a
 * Cast, made once); a hashing layer's int64 bins go only to id readers
 * (graph.c checks it). */
static const char *parent_value(writer *w, const mimo_graph *g, const mimo_node *c,
                                int k, const char **values, const char **as_float)
{
    const mimo_node *p = &g->nodes[k];
    int ids = !p->kind && g->spec->inputs[p->spec_index].dtype != MIMO_DTYPE_FLOAT32;
    if (!ids || c->kind->id_bound)
        return values[k];
    if (!as_float[k]) {
        const mimo_onnx_attr to = {.name = "to", .type = MIMO_ONNX_INT,
                                   .i = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT};
        const char *layer = w->layer;
        w->layer = p->name;
        as_float[k] = add_node(w, "Cast", &values[k], 1, &to, 1, NULL);
        w->layer = layer;
    }
    return as_float[k];
}

/* The mask node n's input carries: the first parent's that has one (a
 * kind of several inputs that reads theirs finds each in masks_in), or
 * NULL. */
static const char *input_mask(const mimo_node *n, const char **masks)
{
    for (int i = 0; i < n->n_in; i++)
        if (masks[n->in[i]])
            return masks[n->in[i]];
    return NULL;
}

/* After n's onnx: its output's mask (masks[k]) — its own, or its
 * source's value handed on — and the checks that the kind honoured the
 * mask it was given and made the one it claims. */
static int note_mask(writer *w, const mimo_graph *g, int k, const char **masks)
{
    const mimo_node *n = &g->nodes[k];
    int how = w->b.mask && n->kind->masking ? n->kind->masking(g, n) : 0;
    if ((how & MIMO_MASK_USE) && !w->b.mask_used)
        return mimo_error(MIMO_EINVAL, "layer '%s': the ONNX export of the kind %s "
                          "cannot read a mask (mask_zero) yet", n->name, n->kind->name);
    if (n->mask_src == k && !w->b.mask_out)
        return mimo_error(MIMO_EINVAL, "layer '%s': the ONNX export of the kind %s "
                          "cannot make its mask yet", n->name, n->kind->name);
    masks[k] = n->mask_src == k ? w->b.mask_out
               : n->mask_src >= 0 ? masks[n->mask_src] : NULL;
    return 0;
}

/* The layers' operators in topological order; values[k] is node k's,
 * masks[k] the mask its output carries (NULL: none). */
static int write_layers(writer *w, const mimo_graph *g, const char **values,
                        const char **as_float, const char **masks)
{
    const char *in[64], *in_masks[64];
    char err[512] = "";
    for (int k = 0; k < g->n_nodes; k++) {
        const mimo_node *n = &g->nodes[k];
        if (!n->kind) {
            values[k] = n->name;
            continue;
        }
        if (!n->kind->onnx)
            return mimo_error(MIMO_EINVAL, "layer '%s': mimo has no ONNX export for "
                              "the kind %s yet", n->name, n->kind->name);
        if (n->n_in > (int)(sizeof in / sizeof *in))
            return mimo_error(MIMO_EINVAL, "layer '%s': more than %d inputs",
                              n->name, (int)(sizeof in / sizeof *in));
        w->layer = n->name;
        for (int i = 0; i < n->n_in; i++) {
            in[i] = parent_value(w, g, n, n->in[i], values, as_float);
            in_masks[i] = masks[n->in[i]];
        }
        w->b.mask = input_mask(n, masks);
        w->b.masks_in = in_masks;
        w->b.mask_out = NULL, w->b.mask_used = 0;
        values[k] = n->kind->onnx(&w->b, g, n, in, err, sizeof err);
        if (!values[k] && !w->failed)
            return mimo_error(MIMO_EINVAL, "layer '%s': %s", n->name,
                              *err ? err : "cannot be exported");
        if (w->failed)
            return mimo_error(MIMO_ENOMEM, "out of memory writing the ONNX model");
        int rc = note_mask(w, g, k, masks);
        if (rc)
            return rc;
    }
    return 0;
}

/* Graph inputs, and each head's value as (N, units) named after it. */
static int write_ends(writer *w, const mimo_graph *g, const char **values,
                      Onnx__GraphProto *gp)
{
    gp->input = alloc(w, (size_t)g->n_inputs, sizeof *gp->input);
    gp->output = alloc(w, (size_t)g->n_heads, sizeof *gp->output);
    if (!gp->input || !gp->output)
        return MIMO_ENOMEM;
    for (int i = 0; i < g->n_inputs; i++) {
        const mimo_node *n = &g->nodes[g->input_node[i]];
        mimo_dtype dt = g->spec->inputs[n->spec_index].dtype;
        int type = dt == MIMO_DTYPE_INT64   ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64
                   : dt == MIMO_DTYPE_INT32 ? ONNX__TENSOR_PROTO__DATA_TYPE__INT32
                                            : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        if (!(gp->input[i] = value_info(w, n->name, type, &n->shape)))
            return MIMO_ENOMEM;
    }
    gp->n_input = (size_t)g->n_inputs;
    for (int h = 0; h < g->n_heads; h++) {
        const mimo_node *n = &g->nodes[g->heads[h].node];
        const char *name = g->heads[h].spec->name;
        const mimo_shape flat = {1, {g->heads[h].units}};
        w->layer = name;
        const char *v = n->shape.rank > 1 ? mimo_onnx_reshape(&w->b, values[g->heads[h].node], &flat)
                                          : values[g->heads[h].node];
        if (!add_node(w, "Identity", &v, 1, NULL, 0, name) ||
            !(gp->output[h] = value_info(w, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
                                         &flat)))
            return MIMO_ENOMEM;
    }
    gp->n_output = (size_t)g->n_heads;
    return 0;
}

/* The model packed into a buffer and written atomically. */
static int write_file(Onnx__ModelProto *mp, const char *path)
{
    size_t len = onnx__model_proto__get_packed_size(mp);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return mimo_error(MIMO_ENOMEM, "%s: out of memory for %zu bytes", path, len);
    onnx__model_proto__pack(mp, buf);
    mimo_atomic a;
    int rc = mimo_mkdirs_for(path);
    if (!rc && !(rc = mimo_atomic_begin(&a, path))) {
        rc = mimo_atomic_write(&a, buf, len);
        if (!rc)
            rc = mimo_atomic_commit(&a, NULL);
        if (rc)
            mimo_atomic_abort(&a);
    }
    free(buf);
    return rc;
}

int mimo_onnx_write(const mimo_graph *g, const mimo_real *params, int opset,
                    const char *path)
{
    if (opset < MIMO_ONNX_OPSET_MIN || opset > MIMO_ONNX_OPSET_MAX)
        return mimo_error(MIMO_EINVAL, "opset %d: mimo writes opsets %d to %d", opset,
                          MIMO_ONNX_OPSET_MIN, MIMO_ONNX_OPSET_MAX);
    writer w = {.b = {.op = b_op, .constant = b_constant,
                      .constant_i64 = b_constant_i64, .params = params,
                      .opset = opset},
                .layer = "mimo"};
    const char **values = calloc((size_t)g->n_nodes, sizeof *values);
    const char **as_float = calloc((size_t)g->n_nodes, sizeof *as_float);
    const char **masks = calloc((size_t)g->n_nodes, sizeof *masks);
    Onnx__GraphProto gp;
    onnx__graph_proto__init(&gp);
    gp.name = "mimo";
    int rc = !values || !as_float || !masks ? mimo_error(MIMO_ENOMEM, "out of memory") : 0;
    if (!rc)
        rc = write_layers(&w, g, values, as_float, masks);
    if (!rc && write_ends(&w, g, values, &gp))
        rc = mimo_error(MIMO_ENOMEM, "out of memory writing the ONNX model");
    if (!rc) {
        gp.node = (Onnx__NodeProto **)w.nodes.v, gp.n_node = w.nodes.n;
        gp.initializer = (Onnx__TensorProto **)w.inits.v, gp.n_initializer = w.inits.n;
        Onnx__OperatorSetIdProto ops;
        onnx__operator_set_id_proto__init(&ops);
        ops.domain = "", ops.has_version = 1, ops.version = opset;
        Onnx__OperatorSetIdProto *opsp = &ops;
        Onnx__ModelProto mp;
        onnx__model_proto__init(&mp);
        mp.has_ir_version = 1, mp.ir_version = 8; /* what opset 17 came with */
        mp.opset_import = &opsp, mp.n_opset_import = 1;
        mp.producer_name = "mimo", mp.producer_version = (char *)mimo_version();
        mp.graph = &gp;
        rc = write_file(&mp, path);
    }
    for (size_t i = 0; i < w.owned.n; i++)
        free(w.owned.v[i]);
    free(w.owned.v), free(w.nodes.v), free(w.inits.v);
    free(values), free(as_float), free(masks);
    return rc;
}
