/* graph.c — compiling a spec into a graph and running it.
 * Compile: resolve names, sort topologically, reject cycles and unused
 * layers, infer shapes through each node's kind (core/kind.h), lay the
 * parameters out in reverse topological order, allocate every work buffer
 * once. Run: loops over the sorted nodes (forward), the heads (loss), and
 * back (backward). What a layer computes lives in its kind's file.
 *
 * Part core (src/core/): specs, the graph, layer kinds, losses, the
 * optimizer, the model and its step parts; uses base only: no MPI, HDF5
 * or YAML (tests/arch checks the include closure).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <tgmath.h>

#include "mimo/error.h"
#include "core/kind.h"

/* ---- errors that name the config position ---------------------------- */

static int spec_error(const mimo_spec *s, mimo_pos p, int code,
                      const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *file = s->file ? s->file : "<config>";
    if (p.line > 0)
        return mimo_error(code, "%s:%d:%d: %s", file, p.line, p.col, msg);
    return mimo_error(code, "%s: (--set) %s", file, msg);
}

/* ---- size arithmetic with overflow checks ---------------------------- */

static int add_size(size_t *acc, size_t a, size_t b)
{
    if (b != 0 && a > SIZE_MAX / b)
        return -1;
    if (*acc > SIZE_MAX - a * b)
        return -1;
    *acc += a * b;
    return 0;
}

/* Rounds a buffer length up to 16 values (64 bytes for float). */
static size_t pad16(size_t n) { return (n + 15) & ~(size_t)15; }

/* ---- compile: names and order ----------------------------------------- */

/* Spec ids: inputs are 0..ni-1, layers ni..ni+nl-1. */
static int find_id(const mimo_spec *s, const char *name)
{
    for (int i = 0; i < s->n_inputs; i++)
        if (strcmp(s->inputs[i].name, name) == 0)
            return i;
    for (int i = 0; i < s->n_layers; i++)
        if (strcmp(s->layers[i].name, name) == 0)
            return s->n_inputs + i;
    return -1;
}

/* parents[id] gets the spec ids of a layer's inputs (NULL for inputs). */
static int resolve_names(const mimo_spec *s, int **parents)
{
    for (int i = 0; i < s->n_layers; i++) {
        const mimo_layer_spec *l = &s->layers[i];
        int id = s->n_inputs + i;
        parents[id] = malloc(sizeof(int) * (size_t)(l->n_from ? l->n_from : 1));
        if (!parents[id])
            return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
        for (int k = 0; k < l->n_from; k++) {
            parents[id][k] = find_id(s, l->from[k]);
            if (parents[id][k] < 0)
                return spec_error(s, l->from_pos[k], MIMO_EINVAL,
                                  "layer '%s' takes input from '%s', which is "
                                  "neither an input nor a layer", l->name,
                                  l->from[k]);
        }
    }
    return 0;
}

static int n_parents(const mimo_spec *s, int id)
{
    return id < s->n_inputs ? 0 : s->layers[id - s->n_inputs].n_from;
}

static const char *id_name(const mimo_spec *s, int id)
{
    return id < s->n_inputs ? s->inputs[id].name : s->layers[id - s->n_inputs].name;
}

/* order[] gets the spec ids sorted topologically, preferring config order
 * among ready nodes, so the result is deterministic. */
static int topo_sort(const mimo_spec *s, int *const *parents, int *order)
{
    int n = s->n_inputs + s->n_layers, done = 0;
    char *placed = calloc((size_t)n, 1);
    if (!placed)
        return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    while (done < n) {
        int pick = -1;
        for (int id = 0; id < n && pick < 0; id++) {
            if (placed[id])
                continue;
            int ready = 1;
            for (int k = 0; k < n_parents(s, id) && ready; k++)
                ready = placed[parents[id][k]];
            if (ready)
                pick = id;
        }
        if (pick < 0)
            break;
        placed[pick] = 1;
        order[done++] = pick;
    }
    if (done < n) { /* the unplaced layers wait on each other: a cycle */
        char names[512] = "";
        int first = -1;
        for (int id = 0; id < n; id++)
            if (!placed[id]) {
                if (first < 0)
                    first = id;
                size_t len = strlen(names);
                snprintf(names + len, sizeof names - len, "%s'%s'",
                         len ? ", " : "", id_name(s, id));
            }
        free(placed);
        return spec_error(s, s->layers[first - s->n_inputs].pos, MIMO_EINVAL,
                          "cycle: layers %s depend on each other through "
                          "'from'", names);
    }
    free(placed);
    return 0;
}

/* ---- compile: nodes, usage, shapes ----------------------------------- */

static int build_nodes(mimo_graph *g, int *const *parents, const int *order,
                       int *node_of)
{
    const mimo_spec *s = g->spec;
    for (int k = 0; k < g->n_nodes; k++)
        node_of[order[k]] = k;
    for (int k = 0; k < g->n_nodes; k++) {
        mimo_node *n = &g->nodes[k];
        int id = order[k];
        n->head = -1;
        n->name = id_name(s, id);
        n->act = MIMO_ACT_LINEAR;
        if (id < s->n_inputs) {
            n->spec_index = id;
            n->shape = s->inputs[id].shape;
            n->width = (int)mimo_shape_size(&n->shape);
            g->input_node[id] = k;
            continue;
        }
        const mimo_layer_spec *l = &s->layers[id - s->n_inputs];
        n->kind = l->kind;
        n->args = l->args;
        n->spec_index = id - s->n_inputs;
        n->n_in = l->n_from;
        n->in = malloc(sizeof(int) * (size_t)n->n_in);
        n->priv = l->kind->node_size ? calloc(1, l->kind->node_size) : NULL;
        if (!n->in || (l->kind->node_size && !n->priv))
            return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
        for (int j = 0; j < n->n_in; j++) {
            n->in[j] = node_of[parents[id][j]];
            g->nodes[n->in[j]].n_consumers++;
        }
    }
    return 0;
}

static int attach_heads(mimo_graph *g, const int *node_of)
{
    const mimo_spec *s = g->spec;
    for (int h = 0; h < g->n_heads; h++) {
        const mimo_output_spec *o = &s->outputs[h];
        int id = find_id(s, o->name);
        if (id < 0)
            return spec_error(s, o->pos, MIMO_EINVAL, "output '%s' is not a "
                              "layer of the network", o->name);
        if (id < s->n_inputs)
            return spec_error(s, o->pos, MIMO_EINVAL, "output '%s' is an input; "
                              "outputs must be layers", o->name);
        if (g->nodes[node_of[id]].head >= 0)
            return spec_error(s, o->pos, MIMO_EINVAL, "layer '%s' is the output "
                              "of two heads", o->name);
        g->heads[h].node = node_of[id];
        g->heads[h].spec = o;
        g->nodes[node_of[id]].head = h;
    }
    return 0;
}

/* Every layer and input must lie on a path to some head. */
static int check_usage(mimo_graph *g)
{
    const mimo_spec *s = g->spec;
    char *used = calloc((size_t)g->n_nodes, 1);
    if (!used)
        return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    for (int h = 0; h < g->n_heads; h++)
        used[g->heads[h].node] = 1;
    for (int k = g->n_nodes - 1; k >= 0; k--)
        for (int j = 0; used[k] && j < g->nodes[k].n_in; j++)
            used[g->nodes[k].in[j]] = 1;
    int rc = 0;
    for (int k = 0; k < g->n_nodes && !rc; k++) {
        const mimo_node *n = &g->nodes[k];
        if (used[k])
            continue;
        if (!n->kind)
            rc = spec_error(s, s->inputs[n->spec_index].pos, MIMO_EINVAL,
                            "input '%s' is not used by any layer on the way "
                            "to an output", n->name);
        else
            rc = spec_error(s, s->layers[n->spec_index].pos, MIMO_EINVAL,
                            "layer '%s' is not used: no output depends on it",
                            n->name);
    }
    free(used);
    return rc;
}

/* The kind's shape inference, then the limits every shape keeps. */
static int infer_node(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (n->kind->infer(g, n, err, len) < 0)
        return -1;
    long long w = mimo_shape_size(&n->shape);
    if (n->shape.rank < 1 || n->shape.rank > MIMO_SAMPLE_RANK || w < 1 ||
        w > INT_MAX / 2) {
        char sh[96];
        mimo_shape_format(&n->shape, sh, sizeof sh);
        snprintf(err, len, "layer '%s' would output shape %s: each sample must "
                 "have 1 to %d axes and fewer than 2^30 elements", n->name, sh,
                 MIMO_SAMPLE_RANK);
        return -1;
    }
    n->width = (int)w;
    return 0;
}

static int infer_shapes(mimo_graph *g)
{
    const mimo_spec *s = g->spec;
    char err[512];
    for (int k = 0; k < g->n_nodes; k++) {
        mimo_node *n = &g->nodes[k];
        if (!n->kind)
            continue;
        err[0] = '\0';
        if (infer_node(g, n, err, sizeof err) < 0)
            return err[0] ? spec_error(s, s->layers[n->spec_index].pos,
                                       MIMO_ESHAPE, "%s", err)
                          : mimo_error(MIMO_ENOMEM, "out of memory compiling "
                                       "the graph");
    }
    for (int h = 0; h < g->n_heads; h++) {
        mimo_head *hd = &g->heads[h];
        mimo_node *n = &g->nodes[hd->node];
        mimo_loss l = hd->spec->loss;
        int categorical = l == MIMO_LOSS_CCE || l == MIMO_LOSS_SPARSE_CCE;
        hd->units = n->width;
        hd->target_width = l == MIMO_LOSS_SPARSE_CCE ? 1 : n->width;
        if (categorical && n->width < 2)
            return spec_error(s, hd->spec->pos, MIMO_ESHAPE, "head '%s': %s "
                              "needs at least 2 classes, layer '%s' has %d "
                              "unit(s)", hd->spec->name, mimo_loss_name(l),
                              n->name, n->width);
        if (categorical && n->shape.rank > 1) {
            char sh[96];
            mimo_shape_format(&n->shape, sh, sizeof sh);
            return spec_error(s, hd->spec->pos, MIMO_ESHAPE, "head '%s': %s "
                              "needs one axis of classes, layer '%s' outputs "
                              "%s (flatten it first)", hd->spec->name,
                              mimo_loss_name(l), n->name, sh);
        }
        /* the loss starts from the logits: the node's own z and dz */
        n->fused = n->kind->logits && n->n_consumers == 0 &&
                   mimo_loss_fusable(l, n->act);
    }
    return 0;
}

/* ---- compile: parameters and buffers ---------------------------------- */

int mimo_node_add_tensor(mimo_node *n, const char *name, const mimo_shape *shape,
                         mimo_init init, double fan_in, double fan_out)
{
    mimo_tensor *t = realloc(n->tensors, sizeof *t * (size_t)(n->n_tensors + 1));
    if (!t)
        return -1;
    n->tensors = t;
    t += n->n_tensors;
    *t = (mimo_tensor){name, *shape, 1, 0, init, fan_in, fan_out};
    for (int k = 0; k < shape->rank; k++)
        t->size *= (size_t)shape->dim[k];
    return n->n_tensors++;
}

/* Reverse topological order: the last layer's gradient is complete first
 * in backward and sits at offset 0, so the buffer fills front to back. */
static int layout_params(mimo_graph *g)
{
    size_t off = 0;
    for (int k = g->n_nodes - 1; k >= 0; k--) {
        mimo_node *n = &g->nodes[k];
        for (int t = 0; t < n->n_tensors; t++) {
            n->tensors[t].off = off;
            if (add_size(&off, 1, n->tensors[t].size))
                return mimo_error(MIMO_ENOMEM, "parameter count overflows");
        }
        g->n_param_nodes += n->n_tensors > 0;
    }
    g->n_params = off;
    g->tensor_node = malloc(sizeof(int) * (size_t)(g->n_param_nodes ? g->n_param_nodes : 1));
    if (!g->tensor_node)
        return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    for (int k = 0, d = 0; k < g->n_nodes; k++)
        if (g->nodes[k].n_tensors)
            g->tensor_node[d++] = k;
    return 0;
}

/* Which nodes need a gradient: those with parameters at or upstream of
 * them (and inputs when input_grads). */
static void mark_grads(const mimo_graph *g, char *need, int input_grads)
{
    for (int k = 0; k < g->n_nodes; k++) {
        const mimo_node *n = &g->nodes[k];
        need[k] = n->kind ? n->n_tensors > 0 : (char)input_grads;
        for (int j = 0; j < n->n_in; j++)
            need[k] |= need[n->in[j]];
    }
}

mimo_real *mimo_arena_take(mimo_arena *a, size_t len)
{
    mimo_real *p = a->base ? a->base + a->used : NULL;
    if (add_size(&a->used, 1, pad16(len)))
        a->overflow = 1;
    return a->overflow ? NULL : p;
}

static int is_view(const mimo_node *n) { return n->kind && n->kind->view; }

/* One pass over the kinds' buffers: counting (a->base NULL) or assigning. */
static void place_buffers(mimo_graph *g, mimo_arena *a)
{
    for (int k = 0; k < g->n_nodes; k++) {
        mimo_node *n = &g->nodes[k];
        if (!n->kind)
            continue;
        if (n->kind->buffers)
            n->kind->buffers(g, n, a);
        else if (!n->kind->view) /* a view's y is its parent's */
            n->y = mimo_arena_take(a, (size_t)g->max_batch * (size_t)n->width);
    }
}

/* dy of every node that needs a gradient (one arena, zeroed by one memset
 * before each backward), then the kinds' work buffers (another). */
static int alloc_buffers(mimo_graph *g, int input_grads)
{
    char *need = calloc((size_t)g->n_nodes, 1);
    mimo_arena grad = {0}, work = {0};
    size_t B = (size_t)g->max_batch;
    if (!need)
        return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    mark_grads(g, need, input_grads);
    for (int k = 0; k < g->n_nodes; k++)
        if (need[k] && !is_view(&g->nodes[k]))
            mimo_arena_take(&grad, B * (size_t)g->nodes[k].width);
    g->grad_arena = grad.overflow ? NULL : calloc(grad.used + 1, sizeof(mimo_real));
    g->grad_arena_len = grad.used;
    grad = (mimo_arena){g->grad_arena, 0, 0};
    for (int k = 0; k < g->n_nodes && g->grad_arena; k++) {
        mimo_node *n = &g->nodes[k];
        if (is_view(n)) /* a view of its parent: the same gradient */
            n->dy = MIMO_PARENT(g, n, 0)->dy;
        else if (need[k])
            n->dy = mimo_arena_take(&grad, B * (size_t)n->width);
    }
    free(need);
    place_buffers(g, &work);
    g->arena = work.overflow || !g->grad_arena ? NULL
                                               : calloc(work.used + 1, sizeof(mimo_real));
    if (g->arena) {
        work = (mimo_arena){g->arena, 0, 0};
        place_buffers(g, &work);
    }
    int maxu = 1, maxw = 1;
    for (int h = 0; h < g->n_heads; h++)
        maxu = g->heads[h].units > maxu ? g->heads[h].units : maxu;
    for (int k = 0; k < g->n_nodes; k++)
        maxw = g->nodes[k].width > maxw ? g->nodes[k].width : maxw;
    g->loss_scratch = calloc((size_t)maxu, sizeof(mimo_real));
    g->col_scratch = calloc((size_t)maxw, sizeof(mimo_real));
    g->grad_alpha = 1;
    if (!g->arena || !g->grad_arena || !g->loss_scratch || !g->col_scratch)
        return mimo_error(MIMO_ENOMEM, "out of memory for the activations of "
                          "batch %d", g->max_batch);
    return 0;
}

/* The columns of node k's output whose gradient some consumer uses. */
void mimo_node_grad_span(const mimo_graph *g, int k, int *lo, int *hi)
{
    const mimo_node *p = &g->nodes[k];
    *lo = 0, *hi = p->dy ? mimo_shape_last(&p->shape) : 0;
    if (p->dy && p->kind && p->kind->grad_span)
        p->kind->grad_span(g, p, lo, hi);
}

static int compile_steps(mimo_graph *g, int input_grads)
{
    const mimo_spec *s = g->spec;
    int n = g->n_nodes, rc;
    if (n <= 0 || s->n_layers <= 0)
        return mimo_error(MIMO_EINVAL, "%s: the network has no layers",
                          s->file ? s->file : "<config>");
    int **parents = calloc((size_t)n, sizeof *parents);
    int *order = malloc(sizeof(int) * (size_t)n);
    int *node_of = malloc(sizeof(int) * (size_t)n);
    if (!parents || !order || !node_of)
        rc = mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    else if (!(rc = resolve_names(s, parents)) && !(rc = topo_sort(s, parents, order)) &&
             !(rc = build_nodes(g, parents, order, node_of)) &&
             !(rc = attach_heads(g, node_of)) && !(rc = check_usage(g)) &&
             !(rc = infer_shapes(g)) && !(rc = layout_params(g)))
        rc = alloc_buffers(g, input_grads);
    for (int i = 0; parents && i < n; i++)
        free(parents[i]);
    free(parents);
    free(order);
    free(node_of);
    return rc;
}

int mimo_graph_compile(const mimo_spec *spec, int max_batch, int input_grads,
                       mimo_graph **out)
{
    *out = NULL;
    if (max_batch < 1)
        return mimo_error(MIMO_EINVAL, "batch size must be at least 1, got %d",
                          max_batch);
    if (spec->n_outputs < 1)
        return mimo_error(MIMO_EINVAL, "%s: the network has no outputs",
                          spec->file ? spec->file : "<config>");
    mimo_graph *g = calloc(1, sizeof *g);
    if (!g)
        return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    g->spec = spec;
    g->max_batch = max_batch;
    g->n_nodes = spec->n_inputs + spec->n_layers;
    g->n_inputs = spec->n_inputs;
    g->n_heads = spec->n_outputs;
    g->nodes = calloc((size_t)g->n_nodes, sizeof *g->nodes);
    g->input_node = calloc((size_t)(g->n_inputs ? g->n_inputs : 1), sizeof(int));
    g->heads = calloc((size_t)g->n_heads, sizeof *g->heads);
    int rc = (!g->nodes || !g->input_node || !g->heads)
                 ? mimo_error(MIMO_ENOMEM, "out of memory compiling the graph")
                 : compile_steps(g, input_grads);
    if (rc) {
        mimo_graph_free(&g);
        return rc;
    }
    *out = g;
    return 0;
}

void mimo_graph_free(mimo_graph **gp)
{
    mimo_graph *g = gp ? *gp : NULL;
    if (!g)
        return;
    for (int k = 0; g->nodes && k < g->n_nodes; k++) {
        free(g->nodes[k].in);
        free(g->nodes[k].tensors);
        free(g->nodes[k].priv);
    }
    free(g->nodes);
    free(g->input_node);
    free(g->heads);
    free(g->arena);
    free(g->grad_arena);
    free(g->loss_scratch);
    free(g->col_scratch);
    free(g->tensor_node);
    free(g);
    *gp = NULL;
}

/* ---- accessors --------------------------------------------------------- */

size_t mimo_graph_param_count(const mimo_graph *g) { return g->n_params; }
int mimo_graph_max_batch(const mimo_graph *g) { return g->max_batch; }
const mimo_spec *mimo_graph_spec(const mimo_graph *g) { return g->spec; }
int mimo_graph_n_inputs(const mimo_graph *g) { return g->n_inputs; }
const char *mimo_graph_input_name(const mimo_graph *g, int i) { return g->spec->inputs[i].name; }
int mimo_graph_input_width(const mimo_graph *g, int i) { return g->nodes[g->input_node[i]].width; }
const mimo_shape *mimo_graph_input_shape(const mimo_graph *g, int i) { return &g->nodes[g->input_node[i]].shape; }
int mimo_graph_n_heads(const mimo_graph *g) { return g->n_heads; }
const mimo_output_spec *mimo_graph_head_spec(const mimo_graph *g, int h) { return g->heads[h].spec; }
int mimo_graph_head_units(const mimo_graph *g, int h) { return g->heads[h].units; }
int mimo_graph_head_target_width(const mimo_graph *g, int h) { return g->heads[h].target_width; }
const mimo_real *mimo_graph_output(const mimo_graph *g, int h) { return g->nodes[g->heads[h].node].y; }
const mimo_real *mimo_graph_input_grad(const mimo_graph *g, int i) { return g->nodes[g->input_node[i]].dy; }

int mimo_graph_n_tensors(const mimo_graph *g)
{
    int t = 0;
    for (int d = 0; d < g->n_param_nodes; d++)
        t += g->nodes[g->tensor_node[d]].n_tensors;
    return t;
}

mimo_param_info mimo_graph_tensor(const mimo_graph *g, int k)
{
    mimo_param_info p = {0};
    for (int d = 0; d < g->n_param_nodes; d++) {
        const mimo_node *n = &g->nodes[g->tensor_node[d]];
        if (k < n->n_tensors) {
            const mimo_tensor *t = &n->tensors[k];
            return (mimo_param_info){n->name, t->name, t->off, t->size, t->shape};
        }
        k -= n->n_tensors;
    }
    return p;
}

double mimo_graph_flops(const mimo_graph *g)
{
    double f = 0;
    for (int k = 0; k < g->n_nodes; k++)
        if (g->nodes[k].kind && g->nodes[k].kind->flops)
            f += g->nodes[k].kind->flops(g, &g->nodes[k]);
    return f;
}

/* Every tensor in topological order of its layer, each layer's in its
 * own order (a dense layer: kernel, then bias). */
void mimo_graph_init_params(const mimo_graph *g, mimo_real *params, uint64_t seed)
{
    mimo_rng r;
    mimo_rng_seed(&r, seed);
    for (int d = 0; d < g->n_param_nodes; d++) {
        const mimo_node *n = &g->nodes[g->tensor_node[d]];
        for (int t = 0; t < n->n_tensors; t++) {
            const mimo_tensor *x = &n->tensors[t];
            mimo_init_fill(&r, x->init, params + x->off, x->size, x->fan_in,
                           x->fan_out);
        }
    }
}

/* ---- running ----------------------------------------------------------- */

void mimo_graph_forward(mimo_graph *g, const mimo_real *params,
                        const mimo_real *const *inputs, int b)
{
    for (int i = 0; i < g->n_inputs; i++)
        g->nodes[g->input_node[i]].y = (mimo_real *)inputs[i];
    for (int k = 0; k < g->n_nodes; k++) {
        mimo_node *n = &g->nodes[k];
        if (n->kind)
            n->kind->forward(g, n, params, b);
    }
}

int mimo_graph_loss(mimo_graph *g, const mimo_real *const *targets, int b,
                    double grad_scale, mimo_head_stats *stats)
{
    if (grad_scale != 0)
        mimo_vec_zero(g->grad_arena, g->grad_arena_len);
    for (int h = 0; h < g->n_heads; h++) {
        int rc = mimo_head_loss(g, &g->heads[h], targets[h], b, grad_scale,
                                stats ? &stats[h] : NULL);
        if (rc)
            return rc;
    }
    return 0;
}

void mimo_graph_backward_hooked(mimo_graph *g, const mimo_real *params,
                                mimo_real *grads, int b,
                                mimo_backward_hook hook, void *user)
{
    size_t done = 0;
    for (int k = g->n_nodes - 1; k >= 0; k--) {
        mimo_node *n = &g->nodes[k];
        if (!n->kind)
            continue;
        if (n->dy || n->fused)
            n->kind->backward(g, n, params, grads, b);
        for (int t = 0; t < n->n_tensors; t++) /* its block ends the final prefix */
            if (n->tensors[t].off + n->tensors[t].size > done)
                done = n->tensors[t].off + n->tensors[t].size;
        if (hook)
            hook(user, n->name, done);
    }
}

void mimo_graph_backward_sgd(mimo_graph *g, mimo_real *params, double lr, int b,
                             mimo_backward_hook hook, void *user)
{
    g->grad_alpha = (mimo_real)-lr;
    mimo_graph_backward_hooked(g, params, params, b, hook, user);
    g->grad_alpha = 1;
}

void mimo_graph_backward(mimo_graph *g, const mimo_real *params,
                         mimo_real *grads, int b)
{
    mimo_graph_backward_hooked(g, params, grads, b, NULL, NULL);
}
