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

#include "core/model.h"
#include "mimo/error.h"
#include "base/clock.h"
#include "base/strutil.h"
#include "core/bf16.h"
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

/* Spec ids: inputs are 0..ni-1, layers ni..ni+nl-1; ix finds them by
 * name (an input before a layer of the same name, as a scan would). */
static int index_names(const mimo_spec *s, mimo_names *ix)
{
    if (mimo_names_init(ix, s->n_inputs + s->n_layers))
        return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    for (int i = 0; i < s->n_inputs; i++)
        mimo_names_add(ix, s->inputs[i].name, i);
    for (int i = 0; i < s->n_layers; i++)
        mimo_names_add(ix, s->layers[i].name, s->n_inputs + i);
    mimo_names_sort(ix);
    return 0;
}

/* parents[id] gets the spec ids of a layer's inputs (NULL for inputs). */
static int resolve_names(const mimo_spec *s, const mimo_names *ix, int **parents)
{
    for (int i = 0; i < s->n_layers; i++) {
        const mimo_layer_spec *l = &s->layers[i];
        int id = s->n_inputs + i;
        parents[id] = malloc(sizeof(int) * (size_t)(l->n_from ? l->n_from : 1));
        if (!parents[id])
            return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
        for (int k = 0; k < l->n_from; k++) {
            parents[id][k] = mimo_names_find(ix, l->from[k]);
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

/* A min-heap of spec ids: the ready nodes, smallest id on top. */
static void heap_push(int *h, int *n, int v)
{
    int i = (*n)++;
    for (; i > 0 && h[(i - 1) / 2] > v; i = (i - 1) / 2)
        h[i] = h[(i - 1) / 2];
    h[i] = v;
}

static int heap_pop(int *h, int *n)
{
    int top = h[0], v = h[--*n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1] < h[c])
            c++;
        if (h[c] >= v)
            break;
        h[i] = h[c], i = c;
    }
    h[i] = v;
    return top;
}

/* The consumers of each spec id as one array (CSR): those of id are
 * kids[at[id] .. at[id + 1]), one entry per edge. */
static int consumers(const mimo_spec *s, int *const *parents, int **at, int **kids)
{
    int n = s->n_inputs + s->n_layers;
    size_t edges = 0;
    for (int id = 0; id < n; id++)
        edges += (size_t)n_parents(s, id);
    *at = calloc((size_t)n + 2, sizeof **at);
    *kids = malloc(sizeof **kids * (edges + 1));
    if (!*at || !*kids)
        return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    for (int id = 0; id < n; id++)
        for (int k = 0; k < n_parents(s, id); k++)
            (*at)[parents[id][k] + 2]++;
    for (int id = 0; id < n; id++)
        (*at)[id + 2] += (*at)[id + 1];
    for (int id = 0; id < n; id++) /* at[p + 1] counts p's kids placed */
        for (int k = 0; k < n_parents(s, id); k++)
            (*kids)[(*at)[parents[id][k] + 1]++] = id;
    return 0;
}

/* order[] gets the spec ids sorted topologically, preferring config order
 * among ready nodes, so the result is deterministic: Kahn's algorithm
 * taking the smallest ready id each time (a heap), O(E + N log N). */
static int topo_sort(const mimo_spec *s, int *const *parents, int *order)
{
    int n = s->n_inputs + s->n_layers, done = 0, ready = 0;
    char *placed = calloc((size_t)n, 1);
    int *waiting = malloc(sizeof(int) * (size_t)n), *heap = malloc(sizeof(int) * (size_t)n);
    int *at = NULL, *kids = NULL;
    int rc = !placed || !waiting || !heap
                 ? mimo_error(MIMO_ENOMEM, "out of memory compiling the graph")
                 : consumers(s, parents, &at, &kids);
    for (int id = 0; id < n && !rc; id++)
        if (!(waiting[id] = n_parents(s, id)))
            heap_push(heap, &ready, id);
    while (!rc && ready > 0) {
        int pick = heap_pop(heap, &ready);
        placed[pick] = 1;
        order[done++] = pick;
        for (int e = at[pick]; e < at[pick + 1]; e++)
            if (--waiting[kids[e]] == 0)
                heap_push(heap, &ready, kids[e]);
    }
    free(waiting);
    free(heap);
    free(at);
    free(kids);
    if (rc) {
        free(placed);
        return rc;
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
        n->mask_src = -1;
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

static int attach_heads(mimo_graph *g, const mimo_names *ix, const int *node_of)
{
    const mimo_spec *s = g->spec;
    for (int h = 0; h < g->n_heads; h++) {
        const mimo_output_spec *o = &s->outputs[h];
        int id = mimo_names_find(ix, o->name);
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

/* A mask on n's input: n passes it on, reads it, or makes its own; a
 * kind that can do none of these with it is a config error. A kind of
 * several inputs that answers (multi_head_attention) reads the masks of
 * all of them, and passes on its first input's (the query's), if any. */
static int infer_mask(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    const mimo_node *p = NULL;
    for (int j = 0; j < n->n_in; j++)
        if (MIMO_PARENT(g, n, j)->mask_src >= 0 && !p)
            p = MIMO_PARENT(g, n, j);
    if (!p)
        return 0;
    int how = n->kind->masking ? n->kind->masking(g, n) : 0;
    if (!how) {
        snprintf(err, len, "%s layer '%s' cannot honour the mask that its input "
                 "'%s' carries (made by '%s' with mask_zero: true): masks go "
                 "through dropout, dense, activation, layer_norm, position_embedding "
                 "and conv1d (padding same or causal, strides 1), and end in gru, "
                 "lstm, bidirectional, global_avg_pool1d, global_max_pool1d or "
                 "multi_head_attention", n->kind->name,
                 n->name, p->name, g->nodes[p->mask_src].name);
        return -1;
    }
    if (how & MIMO_MASK_OWN)
        n->mask_src = (int)(n - g->nodes);
    else if (how & MIMO_MASK_PASS)
        n->mask_src = MIMO_PARENT(g, n, 0)->mask_src;
    return 0;
}

/* The kind's shape inference and masks, then the limits every shape
 * keeps. */
int mimo_node_wide(const mimo_graph *g, const mimo_node *p)
{
    return !p->kind && g->spec->inputs[p->spec_index].dtype == MIMO_DTYPE_INT64;
}

/* Integer ids that floats do not carry (an int64 input's bytes, a
 * hashing layer's bins) are read only by a kind that reads ids, as its
 * first input. */
static int check_id_readers(const mimo_graph *g, const mimo_node *n, char *err,
                            size_t len)
{
    for (int j = 0; j < n->n_in; j++) {
        const mimo_node *p = MIMO_PARENT(g, n, j);
        int wide = mimo_node_wide(g, p), bins = p->kind && p->kind->ids_out;
        if ((!wide && !bins) || (j == 0 && n->kind->id_bound))
            continue;
        snprintf(err, len, "%s layer '%s' cannot read '%s' (%s): only a kind "
                 "that reads ids (embedding, embedding_bag, hashing) reads it, "
                 "as its first input", n->kind->name, n->name, p->name,
                 wide ? "an input of dtype: int64" : "the bin ids of a hashing layer");
        return -1;
    }
    return 0;
}

static int infer_node(mimo_graph *g, mimo_node *n, char *err, size_t len)
{
    if (check_id_readers(g, n, err, len) < 0 ||
        n->kind->infer(g, n, err, len) < 0 || infer_mask(g, n, err, len) < 0)
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

/* What a head's layer ends in, seen through views: 1 probabilities
 * (sigmoid, softmax, masked_softmax), 0 values that cannot be (linear,
 * relu, tanh, a raw input, ...), -1 unknown (a merge of whatever). */
static int ends_in_probabilities(const mimo_graph *g, const mimo_node *n)
{
    while (MIMO_KIND_HAS(n, MIMO_KIND_VIEW))
        n = MIMO_PARENT(g, n, 0);
    if (!n->kind)
        return 0;
    if (n->kind->flags & MIMO_KIND_PROBABILITIES)
        return 1;
    if (n->kind->flags & MIMO_KIND_LOGITS)
        return n->act == MIMO_ACT_SIGMOID || n->act == MIMO_ACT_SOFTMAX;
    return -1;
}

/* A cross-entropy head takes probabilities, or logits with from_logits. */
static int check_head_activation(const mimo_graph *g, const mimo_head *hd)
{
    const mimo_node *n = &g->nodes[hd->node];
    mimo_loss l = hd->spec->loss;
    int ce = l == MIMO_LOSS_BCE || l == MIMO_LOSS_CCE || l == MIMO_LOSS_SPARSE_CCE;
    int probs = ends_in_probabilities(g, n);
    while (MIMO_KIND_HAS(n, MIMO_KIND_VIEW)) /* name the layer that decides */
        n = MIMO_PARENT(g, n, 0);
    const char *act = !n->kind ? "an input"
                      : MIMO_KIND_HAS(n, MIMO_KIND_LOGITS) ? mimo_act_name(n->act)
                                                           : n->kind->name;
    if (ce && hd->spec->from_logits && probs == 1)
        return spec_error(g->spec, hd->spec->pos, MIMO_EINVAL, "head '%s': "
                          "from_logits: true, but layer '%s' ends in %s, which "
                          "gives probabilities already: drop the activation or "
                          "from_logits", hd->spec->name, n->name, act);
    if (ce && !hd->spec->from_logits && probs == 0)
        return spec_error(g->spec, hd->spec->pos, MIMO_EINVAL, "head '%s': %s "
                          "needs probabilities, but layer '%s' ends in %s: set "
                          "from_logits: true on the head (the loss then applies "
                          "the %s itself), or end the layer in %s",
                          hd->spec->name, mimo_loss_name(l), n->name, act,
                          l == MIMO_LOSS_BCE ? "sigmoid" : "softmax",
                          l == MIMO_LOSS_BCE ? "sigmoid" : "softmax");
    return 0;
}

/* class_weight: classes in the head's range; a dense table (1 where not
 * given). A binary head's classes are 0 and 1 of its one unit. */
static int setup_head_weights(const mimo_graph *g, mimo_head *hd)
{
    const mimo_output_spec *o = hd->spec;
    int binary = o->loss == MIMO_LOSS_BCE, classes = binary ? 2 : hd->units;
    hd->weighted = o->missing || o->sample_weight || o->n_class_weight > 0;
    if (o->n_class_weight == 0)
        return 0;
    if (binary && hd->units != 1)
        return spec_error(g->spec, o->class_weight[0].pos, MIMO_EINVAL, "head "
                          "'%s': class_weight on a binary head needs one unit "
                          "(its classes are 0 and 1), layer '%s' has %d",
                          o->name, o->name, hd->units);
    for (int i = 0; i < o->n_class_weight; i++)
        if (o->class_weight[i].cls >= classes)
            return spec_error(g->spec, o->class_weight[i].pos, MIMO_EINVAL,
                              "head '%s': class_weight names class %lld, but "
                              "the head has classes 0 to %d", o->name,
                              o->class_weight[i].cls, classes - 1);
    if (!(hd->class_w = malloc(sizeof(mimo_real) * (size_t)classes)))
        return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    for (int c = 0; c < classes; c++)
        hd->class_w[c] = 1;
    for (int i = 0; i < o->n_class_weight; i++)
        hd->class_w[o->class_weight[i].cls] = (mimo_real)o->class_weight[i].weight;
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
        if (n->mask_src >= 0)
            return spec_error(s, hd->spec->pos, MIMO_ESHAPE, "head '%s': layer "
                              "'%s' carries the mask made by '%s' (mask_zero: "
                              "true), and a loss over masked timesteps is not "
                              "supported: reduce the time axis first (gru, "
                              "lstm, global_avg_pool1d)", hd->spec->name,
                              n->name, g->nodes[n->mask_src].name);
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
        int rc = check_head_activation(g, hd);
        if (rc || (rc = setup_head_weights(g, hd)))
            return rc;
        /* the loss starts from the logits: the node's own z and dz */
        n->fused = MIMO_KIND_HAS(n, MIMO_KIND_LOGITS) && n->n_consumers == 0 &&
                   !hd->spec->from_logits && mimo_loss_fusable(l, n->act);
    }
    return 0;
}

/* ---- compile: parameters and buffers ---------------------------------- */

static int add_tensor(mimo_node *n, const char *name, const mimo_shape *shape,
                      mimo_init init, double fan_in, double fan_out, int state)
{
    mimo_tensor *t = realloc(n->tensors, sizeof *t * (size_t)(n->n_tensors + 1));
    if (!t)
        return -1;
    n->tensors = t;
    t += n->n_tensors;
    *t = (mimo_tensor){name, *shape, 1, 0, init, fan_in, fan_out, state, !state, 0};
    for (int k = 0; k < shape->rank; k++)
        t->size *= (size_t)shape->dim[k];
    return n->n_tensors++;
}

int mimo_node_add_tensor(mimo_node *n, const char *name, const mimo_shape *shape,
                         mimo_init init, double fan_in, double fan_out)
{
    return add_tensor(n, name, shape, init, fan_in, fan_out, 0);
}

int mimo_node_add_state(mimo_node *n, const char *name, const mimo_shape *shape,
                        mimo_init init)
{
    return add_tensor(n, name, shape, init, 1, 1, 1);
}

/* "(3, 4)" */
static void dims_text(const mimo_shape *s, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "(");
    for (int k = 0; k < s->rank && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, "%s%d", k ? ", " : "",
                                 s->dim[k]);
    if (used < len)
        snprintf(buf + used, len - used, ")");
}

/* A sharing layer's tensors must have its owner's shapes; they then use
 * the owner's blocks. */
static int share_tensors(mimo_graph *g, mimo_node *n, const mimo_node *o)
{
    const mimo_layer_spec *l = &g->spec->layers[n->spec_index];
    if (o->n_tensors == 0)
        return spec_error(g->spec, l->shares_pos, MIMO_EINVAL, "layer '%s' shares "
                          "'%s', which has no parameters to share", n->name, o->name);
    for (int t = 0; t < n->n_tensors; t++) {
        const mimo_tensor *a = &n->tensors[t], *b = &o->tensors[t];
        if (a->shape.rank != b->shape.rank ||
            memcmp(a->shape.dim, b->shape.dim, sizeof(int) * (size_t)a->shape.rank)) {
            char x[96], y[96];
            dims_text(&a->shape, x, sizeof x);
            dims_text(&b->shape, y, sizeof y);
            return spec_error(g->spec, l->shares_pos, MIMO_ESHAPE, "layer '%s' "
                              "shares the parameters of '%s', but its input gives "
                              "%s %s where '%s' has %s: the inputs of shared layers "
                              "must have the same shape", n->name, o->name,
                              a->name, x, o->name, y);
        }
        n->tensors[t].shared = 1;
        n->tensors[t].trained = b->trained;
        g->n_shared++;
    }
    return 0;
}

/* Trainability (trainable: false), and the owners of shared tensors. */
static int resolve_params(mimo_graph *g, const int *owner)
{
    const mimo_spec *s = g->spec;
    for (int i = 0; i < s->n_layers; i++)
        if (s->train.loss_weighting == MIMO_WEIGHTING_UNCERTAINTY &&
            strcmp(s->layers[i].name, "loss_weighting") == 0)
            return spec_error(s, s->layers[i].pos, MIMO_EINVAL, "layer name "
                              "'loss_weighting' is taken by the learned task "
                              "weights of loss_weighting: uncertainty (tensor "
                              "loss_weighting/log_var): rename the layer");
        else if (s->train.task_balancing == MIMO_BALANCING_GRADNORM &&
                 strcmp(s->layers[i].name, "task_balancing") == 0)
            return spec_error(s, s->layers[i].pos, MIMO_EINVAL, "layer name "
                              "'task_balancing' is taken by the learned task "
                              "weights of task_balancing: gradnorm (tensors "
                              "task_balancing/weight, initial_loss): rename "
                              "the layer");
    for (int k = 0; k < g->n_nodes; k++) {
        mimo_node *n = &g->nodes[k];
        const mimo_layer_spec *l = n->kind ? &s->layers[n->spec_index] : NULL;
        if (!l)
            continue;
        if (l->trainable_pos.line >= 0 && n->n_tensors == 0 && !l->shares)
            return spec_error(s, l->trainable_pos, MIMO_EINVAL, "'trainable' on "
                              "layer '%s', which has no parameters (%s layers have "
                              "none)", n->name, n->kind->name);
        for (int t = 0; t < n->n_tensors && !l->trainable; t++)
            n->tensors[t].trained = 0;
    }
    for (int k = 0; k < g->n_nodes; k++) {
        mimo_node *n = &g->nodes[k];
        const mimo_layer_spec *l = n->kind ? &s->layers[n->spec_index] : NULL;
        if (!l || !l->shares)
            continue;
        int rc = share_tensors(g, n, &g->nodes[owner[k]]);
        if (rc)
            return rc;
    }
    return 0;
}

/* owner[k]: the node whose blocks node k's tensors use — k, or the end of
 * its `shares` chain (the config resolved chains and rejected cycles).
 * Each layer's owner is found once: a walk stops at a layer already
 * resolved and then marks its path, so a chain of n costs O(n log n). */
static int find_owners(const mimo_graph *g, const mimo_names *ix, const int *node_of,
                       int *owner)
{
    const mimo_spec *s = g->spec;
    int ni = s->n_inputs, nl = s->n_layers;
    int *own = malloc(sizeof(int) * (size_t)(nl ? nl : 1)); /* by layer */
    if (!own)
        return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    for (int i = 0; i < nl; i++)
        own[i] = -1;
    for (int i = 0; i < nl; i++) {
        int j = i, hops = 0;
        while (own[j] < 0 && s->layers[j].shares) {
            int id = mimo_names_find(ix, s->layers[j].shares);
            if (id < ni || ++hops > nl) { /* a spec the config did not check */
                free(own);
                return spec_error(s, s->layers[i].shares_pos, MIMO_EINVAL,
                                  "layer '%s' shares '%s', which resolves to no "
                                  "layer with parameters", s->layers[i].name,
                                  s->layers[i].shares);
            }
            j = id - ni;
        }
        int o = own[j] >= 0 ? own[j] : j;
        for (j = i; own[j] < 0; j = mimo_names_find(ix, s->layers[j].shares) - ni) {
            own[j] = o;
            if (!s->layers[j].shares)
                break;
        }
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const mimo_node *n = &g->nodes[k];
        owner[k] = n->kind ? node_of[ni + own[n->spec_index]] : k;
    }
    free(own);
    return 0;
}

/* Trained tensors first, each owner's block placed in the order backward
 * finishes it: a block is final after the backward of its last user (the
 * lowest node index among the owner and the layers sharing it), so blocks
 * go in decreasing order of that index and the final part of the gradient
 * only grows from the front (done_after). Then what is not trained. */
static int layout_params(mimo_graph *g, const int *owner)
{
    int N = g->n_nodes;
    int *final_at = malloc(sizeof(int) * (size_t)N);
    int *first = malloc(sizeof(int) * (size_t)N), *next = malloc(sizeof(int) * (size_t)N);
    g->done_after = calloc((size_t)N, sizeof *g->done_after);
    if (!final_at || !first || !next || !g->done_after) {
        free(final_at);
        free(first);
        free(next);
        return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    }
    for (int k = 0; k < N; k++)
        final_at[k] = N; /* owners only; set below */
    for (int k = 0; k < N; k++) {
        int o = owner[k];
        if (g->nodes[o].n_tensors && (final_at[o] == N || k < final_at[o]))
            final_at[o] = k < o ? k : o;
    }
    /* the heads' learned s_h: final after the loss, before any layer */
    g->n_log_var = g->spec->train.loss_weighting == MIMO_WEIGHTING_UNCERTAINTY
                       ? g->n_heads : 0;
    /* or gradnorm's learned weights, trained alike */
    g->n_gradnorm = g->spec->train.task_balancing == MIMO_BALANCING_GRADNORM
                        ? g->n_heads : 0;
    size_t off = (size_t)(g->n_log_var + g->n_gradnorm);
    int rc = 0;
    for (int k = 0; k < N; k++)
        g->done_after[k] = off, first[k] = -1;
    for (int o = 0; o < N; o++) /* the owners by final_at, each list in */
        if (final_at[o] < N && owner[o] == o) /* decreasing node order */
            next[o] = first[final_at[o]], first[final_at[o]] = o;
    for (int at = N - 1; at >= 0 && !rc; at--) /* trained, by final_at */
        for (int o = first[at]; o >= 0 && !rc; o = next[o]) {
            mimo_node *n = &g->nodes[o];
            for (int t = 0; t < n->n_tensors && !rc; t++)
                if (n->tensors[t].trained) {
                    n->tensors[t].off = off;
                    rc = add_size(&off, 1, n->tensors[t].size);
                }
            g->done_after[at] = off;
        }
    g->n_trained = off;
    for (int o = 0; o < N && !rc; o++) { /* the rest, in topological order */
        mimo_node *n = &g->nodes[o];
        for (int t = 0; t < n->n_tensors && !rc && owner[o] == o; t++)
            if (!n->tensors[t].trained) {
                n->tensors[t].off = off;
                rc = add_size(&off, 1, n->tensors[t].size);
            }
    }
    g->gradnorm_l0 = off; /* gradnorm's first losses: the last untrained */
    if (!rc)
        rc = add_size(&off, 1, (size_t)g->n_gradnorm);
    for (int k = N - 2; k >= 0; k--) /* the prefix after k covers all after k+1 */
        if (g->done_after[k] < g->done_after[k + 1])
            g->done_after[k] = g->done_after[k + 1];
    free(final_at);
    free(first);
    free(next);
    if (rc)
        return mimo_error(MIMO_ENOMEM, "parameter count overflows");
    g->n_params = off;
    for (int k = 0; k < N; k++) { /* sharing layers use their owner's blocks */
        mimo_node *n = &g->nodes[k];
        int o = owner[k];
        for (int t = 0; t < n->n_tensors && o != k; t++)
            n->tensors[t].off = g->nodes[o].tensors[t].off;
        g->n_param_nodes += n->n_tensors > 0 && o == k;
    }
    g->tensor_node = malloc(sizeof(int) * (size_t)(g->n_param_nodes ? g->n_param_nodes : 1));
    if (!g->tensor_node)
        return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    for (int k = 0, d = 0; k < N; k++)
        if (g->nodes[k].n_tensors && owner[k] == k) {
            g->tensor_node[d++] = k;
            g->n_tensor_refs += g->nodes[k].n_tensors;
        }
    g->tensor_ref = malloc(sizeof *g->tensor_ref * (size_t)(g->n_tensor_refs + 1));
    if (!g->tensor_ref)
        return mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    for (int d = 0, r = 0; d < g->n_param_nodes; d++)
        for (int t = 0; t < g->nodes[g->tensor_node[d]].n_tensors; t++, r++)
            g->tensor_ref[r][0] = g->tensor_node[d], g->tensor_ref[r][1] = t;
    return 0;
}

/* Which nodes need a gradient: those with parameters at or upstream of
 * them (and inputs when input_grads). */
static void mark_grads(const mimo_graph *g, char *need, int input_grads)
{
    for (int k = 0; k < g->n_nodes; k++) {
        const mimo_node *n = &g->nodes[k];
        need[k] = (char)input_grads * !n->kind;
        for (int t = 0; t < n->n_tensors; t++)
            need[k] |= (char)n->tensors[t].trained;
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

double *mimo_arena_take_doubles(mimo_arena *a, size_t n)
{
    /* blocks start on 64-byte boundaries of a calloc'd base */
    return (double *)(void *)mimo_arena_take(a, n * (sizeof(double) / sizeof(mimo_real)));
}

static int is_view(const mimo_node *n)
{
    return MIMO_KIND_HAS(n, MIMO_KIND_VIEW);
}

/* One pass over the kinds' buffers: counting (a->base NULL) or assigning. */
static void place_buffers(mimo_graph *g, mimo_arena *a)
{
    for (int k = 0; k < g->n_nodes; k++) {
        mimo_node *n = &g->nodes[k];
        if (!n->kind)
            continue;
        if (n->kind->buffers)
            n->kind->buffers(g, n, a);
        else if (!MIMO_KIND_HAS(n, MIMO_KIND_VIEW)) /* a view's y is its parent's */
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
        for (int k = 0; k < g->n_nodes; k++) { /* masks made: point at them */
            mimo_node *n = &g->nodes[k];
            if (n->mask_src >= 0 && n->mask_src != k)
                n->mask = g->nodes[n->mask_src].mask;
        }
    }
    int maxu = 1;
    for (int h = 0; h < g->n_heads; h++)
        maxu = g->heads[h].units > maxu ? g->heads[h].units : maxu;
    g->loss_scratch = calloc((size_t)maxu, sizeof(mimo_real));
    g->loss_scale = calloc(2 * (size_t)g->n_heads, sizeof *g->loss_scale);
    g->row_w = calloc((size_t)g->n_heads, sizeof *g->row_w);
    for (int h = 0; g->row_w && h < g->n_heads; h++)
        if (g->heads[h].weighted &&
            !(g->row_w[h] = malloc(sizeof(mimo_real) * (size_t)g->max_batch)))
            return mimo_error(MIMO_ENOMEM, "out of memory for the row weights");
    g->prob_scratch = calloc((size_t)maxu, sizeof(mimo_real));
    g->writes_state = 1;
    for (int k = 0; k < g->n_nodes; k++)
        g->n_collective += MIMO_KIND_HAS(&g->nodes[k], MIMO_KIND_COLLECTIVE);
    if (!g->arena || !g->grad_arena || !g->loss_scratch || !g->prob_scratch ||
        !g->loss_scale || !g->row_w)
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
    int *owner = malloc(sizeof(int) * (size_t)n);
    mimo_names ix = {0};
    if (!parents || !order || !node_of || !owner)
        rc = mimo_error(MIMO_ENOMEM, "out of memory compiling the graph");
    else if (!(rc = index_names(s, &ix)) && !(rc = resolve_names(s, &ix, parents)) &&
             !(rc = topo_sort(s, parents, order)) &&
             !(rc = build_nodes(g, parents, order, node_of)) &&
             !(rc = attach_heads(g, &ix, node_of)) && !(rc = check_usage(g)) &&
             !(rc = infer_shapes(g)) && !(rc = find_owners(g, &ix, node_of, owner)) &&
             !(rc = resolve_params(g, owner)) && !(rc = layout_params(g, owner)))
        rc = alloc_buffers(g, input_grads);
    mimo_names_free(&ix);
    free(owner);
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
    g->bf16 = spec->train.precision == MIMO_PRECISION_BF16 && mimo_bf16_native(NULL);
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
        if (g->nodes[k].kind && g->nodes[k].kind->release && g->nodes[k].priv)
            g->nodes[k].kind->release(&g->nodes[k]);
        free(g->nodes[k].priv);
    }
    free(g->nodes);
    free(g->input_node);
    for (int h = 0; g->heads && h < g->n_heads; h++) {
        free(g->heads[h].class_w);
        if (g->row_w)
            free(g->row_w[h]);
    }
    mimo_graph_diag_free(g);
    mimo_graph_stacked_free(g);
    free(g->heads);
    free(g->row_w);
    free(g->loss_scale);
    free(g->arena);
    free(g->grad_arena);
    free(g->loss_scratch);
    free(g->prob_scratch);
    free(g->tensor_node);
    free(g->tensor_ref);
    free(g->done_after);
    free(g->t_layer);
    free(g);
    *gp = NULL;
}

/* ---- accessors --------------------------------------------------------- */

size_t mimo_graph_param_count(const mimo_graph *g) { return g->n_params; }
size_t mimo_graph_trained_count(const mimo_graph *g) { return g->n_trained; }
int mimo_graph_shares(const mimo_graph *g) { return g->n_shared > 0; }
int mimo_graph_max_batch(const mimo_graph *g) { return g->max_batch; }
int mimo_graph_bf16(const mimo_graph *g) { return g->bf16; }
const mimo_spec *mimo_graph_spec(const mimo_graph *g) { return g->spec; }
int mimo_graph_n_inputs(const mimo_graph *g) { return g->n_inputs; }
const char *mimo_graph_input_name(const mimo_graph *g, int i) { return g->spec->inputs[i].name; }
int mimo_graph_input_width(const mimo_graph *g, int i)
{
    const mimo_node *n = &g->nodes[g->input_node[i]];
    return n->width * (mimo_node_wide(g, n) ? MIMO_I64_SLOTS : 1);
}
const mimo_shape *mimo_graph_input_shape(const mimo_graph *g, int i) { return &g->nodes[g->input_node[i]].shape; }
int mimo_graph_n_heads(const mimo_graph *g) { return g->n_heads; }
const mimo_output_spec *mimo_graph_head_spec(const mimo_graph *g, int h) { return g->heads[h].spec; }
int mimo_graph_head_units(const mimo_graph *g, int h) { return g->heads[h].units; }
int mimo_graph_head_target_width(const mimo_graph *g, int h) { return g->heads[h].target_width; }
const mimo_real *mimo_graph_output(const mimo_graph *g, int h) { return g->nodes[g->heads[h].node].y; }
const mimo_real *mimo_graph_input_grad(const mimo_graph *g, int i) { return g->nodes[g->input_node[i]].dy; }

int mimo_graph_n_tensors(const mimo_graph *g)
{
    return g->n_tensor_refs + (g->n_log_var > 0) + 2 * (g->n_gradnorm > 0);
}

mimo_param_info mimo_graph_tensor(const mimo_graph *g, int k)
{
    mimo_param_info p = {0};
    if (k >= 0 && k < g->n_tensor_refs) {
        const mimo_node *n = &g->nodes[g->tensor_ref[k][0]];
        const mimo_tensor *t = &n->tensors[g->tensor_ref[k][1]];
        return (mimo_param_info){n->name, t->name, t->off, t->size, t->shape, t->trained};
    }
    if (k == g->n_tensor_refs && g->n_log_var) /* last: the heads' learned s_h */
        return (mimo_param_info){"loss_weighting", "log_var", 0,
                                 (size_t)g->n_log_var, {1, {g->n_log_var}}, 1};
    if (k == g->n_tensor_refs && g->n_gradnorm) /* or gradnorm's weights, */
        return (mimo_param_info){"task_balancing", "weight", 0,
                                 (size_t)g->n_gradnorm, {1, {g->n_gradnorm}}, 1};
    if (k == g->n_tensor_refs + 1 && g->n_gradnorm) /* and its first losses */
        return (mimo_param_info){"task_balancing", "initial_loss", g->gradnorm_l0,
                                 (size_t)g->n_gradnorm, {1, {g->n_gradnorm}}, 0};
    return p;
}

void mimo_graph_set_training(mimo_graph *g, const uint64_t *rows, long epoch)
{
    g->training = 1, g->rows = rows, g->epoch = epoch;
}

void mimo_graph_set_inference(mimo_graph *g) { g->training = 0, g->rows = NULL; }

void mimo_graph_set_reduce(mimo_graph *g, mimo_reduce_fn fn, void *user,
                           int writes_state)
{
    g->reduce = fn, g->reduce_user = user, g->writes_state = writes_state;
}

int mimo_graph_collective(const mimo_graph *g) { return g->n_collective > 0; }

int mimo_graph_n_nodes(const mimo_graph *g) { return g->n_nodes; }
const char *mimo_graph_node_name(const mimo_graph *g, int k) { return g->nodes[k].name; }
const char *mimo_graph_node_kind(const mimo_graph *g, int k)
{
    return g->nodes[k].kind ? g->nodes[k].kind->name : "input";
}

int mimo_graph_time_layers(mimo_graph *g, int on)
{
    free(g->t_layer);
    g->t_layer = on ? calloc(2 * (size_t)g->n_nodes, sizeof *g->t_layer) : NULL;
    return on && !g->t_layer ? mimo_error(MIMO_ENOMEM, "out of memory") : 0;
}

void mimo_graph_layer_time(const mimo_graph *g, int k, double *fwd, double *bwd)
{
    *fwd = g->t_layer ? g->t_layer[k] : 0;
    *bwd = g->t_layer ? g->t_layer[g->n_nodes + k] : 0;
}

int mimo_graph_input_ids(const mimo_graph *g, int i, long long *bound)
{
    int k = g->input_node[i];
    *bound = 0;
    for (int c = k + 1; c < g->n_nodes; c++) {
        const mimo_node *n = &g->nodes[c];
        /* the ids are a kind's first input (embedding_bag's weights
         * are its second) */
        long long b = n->kind && n->kind->id_bound && n->n_in > 0 && n->in[0] == k
                          ? n->kind->id_bound(n) : 0;
        if (b > 0 && (*bound == 0 || b < *bound)) /* 0: any integer */
            *bound = b;
    }
    return g->spec->inputs[i].dtype != MIMO_DTYPE_FLOAT32;
}

/* The trained first tensor of a row-sparse reader, or NULL. */
static const mimo_tensor *sparse_tensor(const mimo_node *n)
{
    if (!MIMO_KIND_HAS(n, MIMO_KIND_ROW_SPARSE) || n->n_tensors < 1 ||
        !n->tensors[0].trained)
        return NULL;
    return &n->tensors[0];
}

int mimo_graph_sparse_tables(const mimo_graph *g, mimo_sparse_table *out, int cap)
{
    int count = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const mimo_tensor *t = sparse_tensor(&g->nodes[k]);
        if (!t)
            continue;
        size_t ids = (size_t)g->max_batch * (size_t)MIMO_PARENT(g, &g->nodes[k], 0)->width;
        int j = 0;
        while (j < count && j < cap && out[j].off != t->off)
            j++;
        if (j < count && j < cap) { /* shared: one more reader */
            out[j].max_touched += ids;
        } else {
            if (count < cap)
                out[count] = (mimo_sparse_table){t->off, t->shape.dim[0],
                                                 t->shape.dim[1], ids};
            count++;
        }
    }
    for (int j = 0; j < count && j < cap; j++)
        if (out[j].max_touched > (size_t)out[j].rows)
            out[j].max_touched = (size_t)out[j].rows;
    return count;
}

size_t mimo_graph_touched_rows(const mimo_graph *g, const mimo_sparse_table *t,
                               int b, unsigned char *mark, int32_t *rows)
{
    size_t count = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const mimo_node *n = &g->nodes[k];
        const mimo_tensor *e = sparse_tensor(n);
        if (!e || e->off != t->off)
            continue;
        const mimo_node *p = MIMO_PARENT(g, n, 0);
        size_t len = (size_t)b * (size_t)p->width;
        int wide = mimo_node_wide(g, p);
        for (size_t i = 0; wide && i < len && count < t->max_touched; i++) {
            int64_t v = mimo_node_i64(p, i); /* an int64 input's ids */
            if (!(v >= 0 && v < t->rows) || mark[v])
                continue;
            mark[v] = 1;
            rows[count++] = (int32_t)v;
        }
        for (size_t i = 0; !wide && i < len && count < t->max_touched; i++) {
            mimo_real v = p->y[i];
            if (!(v >= 0 && v < t->rows) || mark[(long)v])
                continue;
            mark[(long)v] = 1;
            rows[count++] = (int32_t)v;
        }
    }
    for (size_t i = 0; i < count; i++)
        mark[rows[i]] = 0;
    return count;
}

int mimo_graph_input_mask(const mimo_graph *g, int i)
{
    int k = g->input_node[i];
    for (int c = k + 1; c < g->n_nodes; c++) {
        const mimo_node *n = &g->nodes[c];
        if (MIMO_KIND_HAS(n, MIMO_KIND_MASK_INPUT) && n->n_in > 1 && n->in[1] == k)
            return 1;
    }
    return 0;
}

void mimo_graph_fault(mimo_graph *g, int rc)
{
    if (!g->fault)
        g->fault = rc;
}

void mimo_graph_reduce(mimo_graph *g, double *v, int n)
{
    int rc = g->reduce ? g->reduce(g->reduce_user, v, n) : 0;
    if (rc)
        mimo_graph_fault(g, rc);
}

int mimo_graph_status(mimo_graph *g)
{
    int rc = g->fault;
    g->fault = 0;
    return rc;
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
    for (int h = 0; h < g->n_log_var; h++)
        params[h] = 0; /* s_h = 0: every head weighs 1 at the start */
    for (int h = 0; h < g->n_gradnorm; h++) /* gradnorm: weights 1, and no */
        params[h] = 1, params[g->gradnorm_l0 + (size_t)h] = 0; /* first loss yet */
    for (int d = 0; d < g->n_param_nodes; d++) {
        const mimo_node *n = &g->nodes[g->tensor_node[d]];
        for (int t = 0; t < n->n_tensors; t++) {
            const mimo_tensor *x = &n->tensors[t];
            mimo_init_fill(&r, x->init, params + x->off, x->size, x->fan_in,
                           x->fan_out);
        }
        if (n->kind->init)
            n->kind->init(n, params);
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
        double t0 = g->t_layer ? mimo_clock() : 0;
        if (n->kind)
            n->kind->forward(g, n, params, b);
        if (g->t_layer)
            g->t_layer[k] += mimo_clock() - t0;
    }
}

int mimo_graph_weigh(const mimo_graph *g, const mimo_real *const *targets,
                     const mimo_real *const *sw, int b, mimo_real *const *w,
                     double *sums)
{
    for (int h = 0; h < g->n_heads; h++) {
        const mimo_head *hd = &g->heads[h];
        sums[h] = b;
        int rc = hd->weighted ? mimo_head_weigh(hd, targets[h], sw ? sw[h] : NULL,
                                                b, w[h], &sums[h]) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

int mimo_graph_loss_weighted(mimo_graph *g, const mimo_real *const *targets,
                             const mimo_real *const *w, int b,
                             const double *scale, mimo_head_stats *stats)
{
    int fault = mimo_graph_status(g); /* met in forward */
    if (fault)
        return fault;
    if (scale)
        mimo_vec_zero(g->grad_arena, g->grad_arena_len);
    for (int h = 0; h < g->n_heads; h++) {
        int rc = mimo_head_loss(g, &g->heads[h], targets[h], w ? w[h] : NULL, b,
                                scale != NULL, scale ? scale[h] : 0,
                                stats ? &stats[h] : NULL);
        if (rc)
            return rc;
    }
    return 0;
}

int mimo_graph_loss(mimo_graph *g, const mimo_real *const *targets, int b,
                    double grad_scale, mimo_head_stats *stats)
{
    double *scale = g->loss_scale, *sums = g->loss_scale + g->n_heads;
    int rc = mimo_graph_weigh(g, targets, NULL, b, g->row_w, sums);
    for (int h = 0; h < g->n_heads; h++)
        scale[h] = grad_scale * g->heads[h].spec->weight;
    return rc ? rc : mimo_graph_loss_weighted(g, targets,
                                              (const mimo_real *const *)g->row_w,
                                              b, grad_scale != 0 ? scale : NULL,
                                              stats);
}

int mimo_graph_head_weighted(const mimo_graph *g, int h) { return g->heads[h].weighted; }
int mimo_graph_log_vars(const mimo_graph *g) { return g->n_log_var; }
int mimo_graph_gradnorm(const mimo_graph *g, size_t *l0)
{
    if (l0)
        *l0 = g->gradnorm_l0;
    return g->n_gradnorm;
}

void mimo_graph_head_sets(const mimo_graph *g, uint64_t *H)
{
    for (int h = 0; h < g->n_heads; h++)
        H[g->heads[h].node] |= 1ULL << h;
    for (int k = g->n_nodes - 1; k >= 0; k--)
        for (int j = 0; j < g->nodes[k].n_in; j++)
            H[g->nodes[k].in[j]] |= H[k];
}

static void backward_nodes(mimo_graph *g, const mimo_real *params, mimo_real *grads,
                           int b, mimo_backward_hook hook, void *user, int after);

void mimo_graph_backward_hooked(mimo_graph *g, const mimo_real *params,
                                mimo_real *grads, int b,
                                mimo_backward_hook hook, void *user)
{
    backward_nodes(g, params, grads, b, hook, user, -1);
}

void mimo_graph_backward_after(mimo_graph *g, const mimo_real *params,
                               mimo_real *grads, int b, int after)
{
    backward_nodes(g, params, grads, b, NULL, NULL, after);
}

static void backward_nodes(mimo_graph *g, const mimo_real *params, mimo_real *grads,
                           int b, mimo_backward_hook hook, void *user, int after)
{
    size_t done = 0;
    if (g->diag && b > 0)
        mimo_diag_begin(g, b);
    for (int k = g->n_nodes - 1; k > after; k--) {
        mimo_node *n = &g->nodes[k];
        if (!n->kind)
            continue;
        double t0 = g->t_layer ? mimo_clock() : 0;
        if (g->diag && b > 0)
            mimo_diag_before(g, k, b);
        if (n->dy || n->fused)
            n->kind->backward(g, n, params, grads, b);
        if (g->diag && b > 0)
            mimo_diag_after(g, k, b);
        if (g->t_layer)
            g->t_layer[g->n_nodes + k] += mimo_clock() - t0;
        done = g->done_after[k];
        if (hook)
            hook(user, n->name, done);
    }
    if (g->diag && b > 0)
        mimo_diag_end(g, b);
}

void mimo_graph_backward(mimo_graph *g, const mimo_real *params,
                         mimo_real *grads, int b)
{
    mimo_graph_backward_hooked(g, params, grads, b, NULL, NULL);
}
