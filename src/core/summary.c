/* summary.c — the layer table of `mimo summary` and the Graphviz text of
 * `mimo dot`, both read straight off the compiled graph. */
#include "core/model.h"
#include "mimo/summary.h"

#include <string.h>

#include "mimo/error.h"
#include "core/optim.h"
#include "core/bf16.h"
#include "core/kind.h"

/* The optimizer's moments per parameter (2 when unknown). */
static int optim_slots(const mimo_graph *g)
{
    mimo_optim *o = NULL;
    int slots = mimo_optim_create(&g->spec->train.opt, 0, &o) ? 2 : mimo_optim_n_slots(o);
    mimo_optim_free(&o);
    return slots;
}

double mimo_graph_train_bytes(const mimo_graph *g)
{
    double vals = (double)g->n_params * (2.0 + optim_slots(g)), act = 0;
    for (int k = 0; k < g->n_nodes; k++) { /* y, z, dz, dy at most */
        const mimo_node *n = &g->nodes[k];
        act += 4.0 * g->max_batch * (double)n->width;
        if (n->kind && n->kind->scratch) /* im2col patches */
            act += (double)n->kind->scratch(g, n, (size_t)g->max_batch);
    }
    return (vals + act) * sizeof(mimo_real);
}

/* "dense(relu)", "concat", "input", "dense(tanh) shares a", ... */
static void type_text(const mimo_graph *g, const mimo_node *n, char *buf,
                      size_t len)
{
    const mimo_layer_spec *l = n->kind ? &g->spec->layers[n->spec_index] : NULL;
    if (!n->kind) /* int64 ids say so: their rows are twice the slots */
        snprintf(buf, len, "input%s", mimo_node_wide(g, n) ? " int64" : "");
    else if (n->kind->describe)
        n->kind->describe(n, buf, len);
    else
        snprintf(buf, len, "%s", n->kind->name);
    size_t used = strlen(buf);
    if (l && l->shares)
        snprintf(buf + used, len - used, " shares %s", l->shares);
    else if (l && !l->trainable)
        snprintf(buf + used, len - used, " frozen");
    used = strlen(buf);
    if (n->mask_src >= 0) /* its output carries a mask over time */
        snprintf(buf + used, len - used, ", mask");
}

/* The parameters a layer owns (a sharing layer owns none). */
static size_t node_params(const mimo_node *n)
{
    size_t p = 0;
    for (int t = 0; t < n->n_tensors; t++)
        p += n->tensors[t].shared ? 0 : n->tensors[t].size;
    return p;
}

static void sources_text(const mimo_graph *g, const mimo_node *n, char *buf,
                         size_t len)
{
    buf[0] = '\0';
    for (int j = 0; j < n->n_in; j++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", j ? ", " : "",
                 g->nodes[n->in[j]].name);
    }
}

int mimo_summary_write(const mimo_graph *g, FILE *f)
{
    int wname = (int)strlen("Layer (type)"), wshape = 15;
    char type[160], shape[96], src[1024], cell[256];
    size_t scratch = 0, bs = (size_t)g->max_batch;
    for (int k = 0; k < g->n_nodes; k++) {
        const mimo_node *n = &g->nodes[k];
        type_text(g, n, type, sizeof type);
        int w = (int)(strlen(n->name) + strlen(type) + 3);
        wname = w > wname ? w : wname;
        mimo_shape_format(&n->shape, shape, sizeof shape);
        wshape = (int)strlen(shape) > wshape ? (int)strlen(shape) : wshape;
        if (n->kind && n->kind->scratch)
            scratch += n->kind->scratch(g, n, bs);
    }
    if (g->n_log_var && wname < (int)strlen("loss_weighting (uncertainty)"))
        wname = (int)strlen("loss_weighting (uncertainty)");
    int total = wname + wshape + 1 + 12 + 24;
    fprintf(f, "Model: %s\n", g->spec->file ? g->spec->file : "<config>");
    for (int i = 0; i < total; i++)
        fputc('=', f);
    fprintf(f, "\n%-*s %-*s %11s  %s\n", wname, "Layer (type)", wshape,
            "Output shape", "Params", "Connected to");
    for (int i = 0; i < total; i++)
        fputc('-', f);
    fputc('\n', f);
    for (int k = 0; k < g->n_nodes; k++) {
        const mimo_node *n = &g->nodes[k];
        type_text(g, n, type, sizeof type);
        snprintf(cell, sizeof cell, "%s (%s)", n->name, type);
        mimo_shape_format(&n->shape, shape, sizeof shape);
        sources_text(g, n, src, sizeof src);
        fprintf(f, "%-*s %-*s %11zu  %s\n", wname, cell, wshape, shape,
                node_params(n), src);
    }
    if (g->n_log_var) /* the learned s_h of loss_weighting: uncertainty */
        fprintf(f, "%-*s %-*s %11d  %s\n", wname, "loss_weighting (uncertainty)",
                wshape, "", g->n_log_var, "the heads' losses");
    if (g->n_gradnorm) /* the weights and first losses of gradnorm */
        fprintf(f, "%-*s %-*s %11d  %s\n", wname, "task_balancing (gradnorm)",
                wshape, "", 2 * g->n_gradnorm, "the heads' losses");
    for (int i = 0; i < total; i++)
        fputc('=', f);
    fprintf(f, "\nTotal params: %zu\nTrainable params: %zu\nNon-trainable params: "
            "%zu\n", g->n_params, g->n_trained, g->n_params - g->n_trained);
    fprintf(f, "Memory to train: about %.1f MB per rank (parameters, gradients, "
            "optimizer moments, activations and work buffers at batch %d; the "
            "data apart)\n", mimo_graph_train_bytes(g) / 1e6, g->max_batch);
    if (g->spec->train.accumulate > 1)
        fprintf(f, "Gradient accumulation: %ld micro-steps of %d rows per update of "
                "%ld\n", g->spec->train.accumulate, g->max_batch,
                g->spec->train.batch_size);
    if (g->spec->train.precision == MIMO_PRECISION_BF16) { /* as asked, then as run */
        const char *what = NULL;
        int native = mimo_bf16_native(&what);
        if (g->bf16)
            fprintf(f, "Precision: bf16 (%s): dense and conv products in bf16, float32 "
                    "accumulation; parameters, gradients, losses float32\n", what);
        else
            fprintf(f, "Precision: float32 (bf16 asked for, but %s)\n",
                    native ? "this graph runs float32" : what);
    }
    if (scratch) /* the kinds' extra work buffers (im2col) */
        fprintf(f, "Work buffers (convolutions, pooling argmax, recurrent steps): %.1f MiB at "
                "batch_size %zu\n", (double)scratch * sizeof(mimo_real) / 1048576.0,
                bs);
    fprintf(f, "Heads:\n");
    for (int h = 0; h < g->n_heads; h++) {
        const mimo_head *hd = &g->heads[h];
        const mimo_output_spec *o = hd->spec;
        mimo_shape_format(&g->nodes[hd->node].shape, shape, sizeof shape);
        if (g->n_log_var || g->n_gradnorm)
            snprintf(cell, sizeof cell, "weight learned");
        else
            snprintf(cell, sizeof cell, "weight %g", o->weight);
        /* from_logits only: a sigmoid or softmax fused with its
         * cross-entropy still takes probabilities, as the config says */
        fprintf(f, "  %s: %s, %s, %s%s", o->name, mimo_loss_name(o->loss), cell,
                shape, o->from_logits ? ", from logits" : "");
        if (o->missing == MIMO_MISSING_NAN)
            fprintf(f, ", missing: nan");
        else if (o->missing)
            fprintf(f, ", missing: %g", o->missing_value);
        if (o->sample_weight)
            fprintf(f, ", sample_weight: %s", o->sample_weight);
        for (int i = 0; i < o->n_class_weight && i < 8; i++)
            fprintf(f, "%s%lld: %g", i ? ", " : ", class_weight: {",
                    o->class_weight[i].cls, o->class_weight[i].weight);
        if (o->n_class_weight)
            fprintf(f, "%s}", o->n_class_weight > 8 ? ", ..." : "");
        fputc('\n', f);
    }
    return ferror(f) ? mimo_error(MIMO_EIO, "could not write the summary") : 0;
}

/* Writes s inside a Graphviz string, escaping quotes and backslashes. */
static void dot_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
}

static void dot_quote(FILE *f, const char *s)
{
    fputc('"', f);
    dot_escape(f, s);
    fputc('"', f);
}

/* "4", or "28x28" for more than one axis. */
static void edge_text(const mimo_shape *s, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < s->rank && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, "%s%d", k ? "x" : "",
                                 s->dim[k]);
}

int mimo_dot_write(const mimo_graph *g, FILE *f)
{
    char type[160], dims[96];
    fprintf(f, "digraph mimo {\n  rankdir=TB;\n"
               "  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
               "  edge [fontname=\"Helvetica\", fontsize=10];\n");
    for (int k = 0; k < g->n_nodes; k++) {
        const mimo_node *n = &g->nodes[k];
        type_text(g, n, type, sizeof type);
        const char *shape = !n->kind ? "ellipse" : n->kind->dot_shape;
        fprintf(f, "  ");
        dot_quote(f, n->name);
        fprintf(f, " [shape=%s, label=\"", shape);
        dot_escape(f, n->name);
        mimo_shape_format(&n->shape, dims, sizeof dims);
        fprintf(f, "\\n%s\\n%s\"];\n", type, dims);
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const mimo_node *n = &g->nodes[k];
        for (int j = 0; j < n->n_in; j++) {
            fprintf(f, "  ");
            dot_quote(f, g->nodes[n->in[j]].name);
            fprintf(f, " -> ");
            dot_quote(f, n->name);
            edge_text(&g->nodes[n->in[j]].shape, dims, sizeof dims);
            fprintf(f, " [label=\"%s\"];\n", dims);
        }
    }
    for (int h = 0; h < g->n_heads; h++) {
        const mimo_head *hd = &g->heads[h];
        fprintf(f, "  \"head:%d\" [shape=note, label=\"head ", h);
        dot_escape(f, hd->spec->name);
        fprintf(f, "\\n%s x %g\"];\n  ", mimo_loss_name(hd->spec->loss),
                hd->spec->weight);
        dot_quote(f, g->nodes[hd->node].name);
        fprintf(f, " -> \"head:%d\";\n", h);
    }
    fprintf(f, "}\n");
    return ferror(f) ? mimo_error(MIMO_EIO, "could not write the graph") : 0;
}
