/* export.c — a checkpoint's model for other tools (mimo/export.h): as ONNX
 * (the graph written by io/onnx.c), and as a PyTorch module: the runtime
 * in torch_twin.py (embedded at build time) followed by the graph as JSON
 * — nodes in topological order with their kind, settings (each kind's
 * config keys, read through its arg table), parents, per-sample shape,
 * masks and parameter tensors, and the heads. */
#include "mimo/export.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fsutil.h"
#include "core/kind.h"
#include "core/model.h"
#include "io/onnx.h"
#include "mimo/checkpoint.h"
#include "mimo/config.h"
#include "mimo/error.h"
#include "mimo/ffi.h"
#include "mimo/trainer.h"

_Static_assert(MIMO_ONNX_OPSET_DEFAULT >= MIMO_ONNX_OPSET_MIN &&
                   MIMO_ONNX_OPSET_DEFAULT <= MIMO_ONNX_OPSET_MAX,
               "the default opset is one mimo writes");

/* torch_twin.py's bytes */
static const unsigned char twin[] = {
#include "torch_twin.inc"
};

int mimo_export_onnx(const char *checkpoint, const char *out, int opset)
{
    mimo_spec spec;
    mimo_model *m = NULL;
    int rc = mimo_load(checkpoint, &spec, &m);
    if (!rc)
        rc = mimo_onnx_write(mimo_model_graph(m), mimo_model_params(m),
                             opset ? opset : MIMO_ONNX_OPSET_DEFAULT, out);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
    return rc;
}

/* ---- the PyTorch module ------------------------------------------------- */

/* A growing text buffer; a failed allocation sticks (oom). */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    for (int tries = 0; tries < 2 && !t->oom; tries++) {
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if (t->s && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = 2 * (t->cap + (size_t)n) + 256;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->oom = 1;
            return;
        }
        t->s = s, t->cap = cap;
    }
}

/* A JSON string: names are config keys and layer names, escaped anyway. */
static void put_str(text *t, const char *s)
{
    put(t, "\"");
    for (; *s; s++)
        if (*s == '"' || *s == '\\')
            put(t, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            put(t, "\\u%04x", *s);
        else
            put(t, "%c", *s);
    put(t, "\"");
}

static void put_shape(text *t, const mimo_shape *s)
{
    put(t, "[");
    for (int a = 0; a < s->rank; a++)
        put(t, "%s%d", a ? ", " : "", s->dim[a]);
    put(t, "]");
}

/* One setting of a kind's args struct, by its arg table entry. */
static void put_arg(text *t, const mimo_arg *a, const void *args)
{
    const char *p = (const char *)args + a->offset;
    const mimo_ints *v = (const mimo_ints *)p;
    switch (a->type) {
    case MIMO_ARG_INT: case MIMO_ARG_BOOL: put(t, "%d", *(const int *)p); break;
    case MIMO_ARG_REAL: put(t, "%.17g", *(const double *)p); break;
    case MIMO_ARG_ACT: put_str(t, mimo_act_name(*(const mimo_act *)p)); break;
    case MIMO_ARG_CHOICE: put_str(t, a->choices[*(const int *)p]); break;
    case MIMO_ARG_NAME: put_str(t, *(char *const *)p ? *(char *const *)p : ""); break;
    case MIMO_ARG_INTS:
        put(t, "[");
        for (int k = 0; k < v->n; k++)
            put(t, "%s%d", k ? ", " : "", v->v[k]);
        put(t, "]");
        break;
    case MIMO_ARG_REALS:
        put(t, "[");
        for (int k = 0; k < ((const mimo_reals *)p)->n; k++)
            put(t, "%s%.17g", k ? ", " : "", ((const mimo_reals *)p)->v[k]);
        put(t, "]");
        break;
    case MIMO_ARG_INIT: put(t, "null"); break; /* initializers: not needed */
    case MIMO_ARG_LAYER: { /* {"type": kind, its settings...} */
        const mimo_sublayer *s = (const mimo_sublayer *)p;
        put(t, "{\"type\": ");
        put_str(t, s->kind ? s->kind->name : "");
        for (int k = 0; s->args && k < s->kind->n_args; k++) {
            put(t, ", ");
            put_str(t, s->kind->args[k].key);
            put(t, ": ");
            put_arg(t, &s->kind->args[k], s->args);
        }
        put(t, "}");
        break;
    }
    }
}

/* Masks (ARCHITECTURE.md, Masks) by the names of the nodes that made
 * them: mask_in, the one n's input carries, with mask_use when n reads
 * it; mask_src, the one n's output carries (n's own name: n makes it). */
static void put_masks(text *t, const mimo_graph *g, const mimo_node *n)
{
    int in = -1;
    for (int i = 0; i < n->n_in && in < 0; i++)
        in = g->nodes[n->in[i]].mask_src;
    if (in >= 0) {
        int how = n->kind->masking ? n->kind->masking(g, n) : 0;
        put(t, ", \"mask_in\": ");
        put_str(t, g->nodes[in].name);
        put(t, ", \"mask_use\": %s", how & MIMO_MASK_USE ? "true" : "false");
    }
    if (n->mask_src >= 0) {
        put(t, ", \"mask_src\": ");
        put_str(t, g->nodes[n->mask_src].name);
    }
}

static void put_node(text *t, const mimo_graph *g, int k)
{
    const mimo_node *n = &g->nodes[k];
    const mimo_layer_spec *l = n->kind ? &g->spec->layers[n->spec_index] : NULL;
    put(t, "  {\"name\": ");
    put_str(t, n->name);
    put(t, ", \"kind\": ");
    put_str(t, n->kind ? n->kind->name : "input");
    put(t, ", \"shape\": ");
    put_shape(t, &n->shape);
    if (!n->kind) {
        put(t, ", \"ids\": %s}", g->spec->inputs[n->spec_index].dtype != MIMO_DTYPE_FLOAT32
                                   ? "true" : "false");
        return;
    }
    put(t, ", \"trainable\": %s, \"from\": [", l->trainable ? "true" : "false");
    for (int i = 0; i < n->n_in; i++) {
        put(t, i ? ", " : "");
        put_str(t, g->nodes[n->in[i]].name);
    }
    put(t, "], \"args\": {");
    for (int i = 0; i < n->kind->n_args; i++) {
        put(t, i ? ", " : "");
        put_str(t, n->kind->args[i].key);
        put(t, ": ");
        put_arg(t, &n->kind->args[i], n->args);
    }
    put(t, "}");
    if (l->shares) {
        put(t, ", \"params_of\": ");
        put_str(t, l->shares);
    }
    put_masks(t, g, n);
    put(t, ", \"tensors\": [");
    for (int i = 0, first = 1; i < n->n_tensors; i++) {
        const mimo_tensor *x = &n->tensors[i];
        if (x->shared)
            continue;
        put(t, "%s{\"name\": ", first ? "" : ", ");
        put_str(t, x->name);
        put(t, ", \"shape\": ");
        put_shape(t, &x->shape);
        put(t, ", \"trainable\": %s, \"state\": %s}", x->trained ? "true" : "false",
            x->state ? "true" : "false");
        first = 0;
    }
    put(t, "]}");
}

static int graph_json(const mimo_graph *g, text *t)
{
    put(t, "{\"nodes\": [\n");
    for (int k = 0; k < g->n_nodes; k++) {
        put_node(t, g, k);
        put(t, k + 1 < g->n_nodes ? ",\n" : "\n");
    }
    put(t, "], \"heads\": [");
    for (int h = 0; h < g->n_heads; h++) {
        put(t, "%s{\"name\": ", h ? ", " : "");
        put_str(t, g->heads[h].spec->name);
        put(t, ", \"node\": ");
        put_str(t, g->nodes[g->heads[h].node].name);
        put(t, "}");
    }
    put(t, "]}");
    return t->oom ? mimo_error(MIMO_ENOMEM, "out of memory") : 0;
}

/* The module: torch_twin.py, then GRAPH = the graph's JSON. */
static int write_all(const char *out, const text *graph)
{
    static const char head[] = "\nGRAPH = r'''\n", tail[] = "\n'''\n";
    size_t len = sizeof twin + sizeof head - 1 + graph->len + sizeof tail - 1;
    char *buf = malloc(len);
    if (!buf)
        return mimo_error(MIMO_ENOMEM, "%s: out of memory", out);
    char *p = buf;
    memcpy(p, twin, sizeof twin), p += sizeof twin;
    memcpy(p, head, sizeof head - 1), p += sizeof head - 1;
    memcpy(p, graph->s, graph->len), p += graph->len;
    memcpy(p, tail, sizeof tail - 1);
    mimo_atomic a;
    int rc = mimo_mkdirs_for(out);
    if (!rc && !(rc = mimo_atomic_begin(&a, out))) {
        if (!(rc = mimo_atomic_write(&a, buf, len)))
            rc = mimo_atomic_commit(&a, NULL);
        if (rc)
            mimo_atomic_abort(&a);
    }
    free(buf);
    return rc;
}

int mimo_export_torch(const char *checkpoint, const char *out)
{
    mimo_spec spec;
    mimo_model *m = NULL;
    text t = {0};
    int rc = mimo_load(checkpoint, &spec, &m);
    if (!rc)
        rc = graph_json(mimo_model_graph(m), &t);
    if (!rc && strstr(t.s, "'''"))
        rc = mimo_error(MIMO_EINVAL, "a name holds ''' (the module quotes the graph "
                        "with it)");
    if (!rc)
        rc = write_all(out, &t);
    free(t.s);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
    return rc;
}
