/* stacked.c — the heads' backward in one pass, their gradients stacked
 * (task balancing's per-head gradients: core/balance.h).
 *
 * H(k), the heads whose loss node k's output feeds, is propagated from
 * the heads up to their ancestors. A node one head reaches (a head's
 * tower) runs its backward once, into that head's gradient buffer, as
 * in a plain backward. A node two heads or more reach (the trunk) holds
 * its output's gradient as T slices, one per head, stacked:
 *
 *     dy_stacked (T, b, width): slice t at t * b * width
 *
 * A tower node writes into slice t of its trunk parents; a trunk node
 * reads its slices and writes the same slices of its parents (a parent of
 * a trunk node is in the trunk too). A kind with backward_stacked takes
 * the slices of its heads at once (dense: one product of T*b rows for
 * the input's gradient, its weights' gradient per head); any other kind
 * runs once per head it serves, pointed at that head's slices. Nodes
 * that no head reaches are skipped. Each head's gradients come out as a
 * backward seeded by that head alone would give them (the same products
 * over the same rows), without running every head's backward over the
 * other heads' towers. Memory: T x max_batch values per trunk value of
 * the graph's outputs (and of a dense layer's pre-activation). Used when
 * each head's output is its own (no head feeds another head or is a view
 * of the trunk) and the slices fit in memory (mimo_graph_stacked_enable
 * says so); otherwise model.c runs one backward per head. */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "core/graph.h"
#include "core/graph_impl.h"
#include "core/kind.h"
#include "mimo/error.h"

struct mimo_stacked {
    int T;
    uint64_t *H;          /* per node: the heads it reaches (bits) */
    mimo_real **dy;       /* per node: its T slices (a view: its parent's),
                           * or NULL outside the trunk */
    mimo_real **dz;       /* per trunk node of a kind with backward_stacked
                           * whose dz is its own buffer: T slices of it */
    mimo_real *buf;       /* all the slices */
    size_t len;
    int *nodes;           /* trunk nodes whose slices are their own */
    int n_nodes;
    mimo_real **keep;     /* a node's parents' own dy while pointed at a
                           * head's slices (the most inputs of a node) */
    mimo_real *reach[64]; /* a trunk node's heads' gradient buffers */
};

static int is_view(const mimo_node *n) { return MIMO_KIND_HAS(n, MIMO_KIND_VIEW); }

static int lowest(uint64_t x)
{
    int h = 0;
    while (!(x >> h & 1))
        h++;
    return h;
}

void mimo_graph_stacked_free(mimo_graph *g)
{
    struct mimo_stacked *s = g->stacked;
    if (!s)
        return;
    free(s->H);
    free(s->dy);
    free(s->dz);
    free(s->buf);
    free(s->nodes);
    free(s->keep);
    free(s);
    g->stacked = NULL;
}

/* Each trunk node's slices in buf (a view's: its parent's, also when
 * a single head reaches the view): one pass counting (base NULL), one
 * assigning. */
static void place(mimo_graph *g, struct mimo_stacked *s, mimo_real *base)
{
    size_t B = (size_t)g->max_batch, used = 0;
    s->n_nodes = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        mimo_node *n = &g->nodes[k];
        if (n->dy && n->kind && is_view(n)) { /* its parent's, as its dy is */
            s->dy[k] = s->dy[n->in[0]];
            continue;
        }
        if (!n->dy || mimo_popcount64(s->H[k]) < 2)
            continue;
        size_t len = (size_t)s->T * B * (size_t)n->width;
        s->dy[k] = base ? base + used : NULL;
        used += len;
        if (n->kind && n->kind->backward_stacked && n->dz && n->dz != n->dy) {
            s->dz[k] = base ? base + used : NULL;
            used += len;
        }
        if (base)
            s->nodes[s->n_nodes] = k;
        s->n_nodes++;
    }
    s->len = used;
}

/* MIMO_EINVAL: the graph is not for it (below); MIMO_ENOMEM: no memory
 * for the slices. Either way the caller runs one backward per head. */
int mimo_graph_stacked_enable(mimo_graph *g)
{
    if (g->stacked)
        return 0;
    if (g->n_heads > 64)
        return MIMO_EINVAL;
    struct mimo_stacked *s = calloc(1, sizeof *s);
    int n = g->n_nodes, max_in = 1;
    for (int k = 0; k < n; k++)
        max_in = g->nodes[k].n_in > max_in ? g->nodes[k].n_in : max_in;
    if (!s || !(s->H = calloc((size_t)n, sizeof *s->H)) ||
        !(s->keep = calloc((size_t)max_in, sizeof *s->keep)) ||
        !(s->dy = calloc((size_t)n, sizeof *s->dy)) ||
        !(s->dz = calloc((size_t)n, sizeof *s->dz)) ||
        !(s->nodes = calloc((size_t)n, sizeof *s->nodes))) {
        g->stacked = s;
        mimo_graph_stacked_free(g);
        return MIMO_ENOMEM;
    }
    g->stacked = s;
    s->T = g->n_heads;
    mimo_graph_head_sets(g, s->H);
    /* the loss seeds a head through its own dy, which must not be the
     * trunk's: not when a head feeds another head, or is a view (reshape,
     * flatten) of a trunk node */
    for (int h = 0; h < g->n_heads; h++) {
        int k = g->heads[h].node;
        while (g->nodes[k].kind && is_view(&g->nodes[k]))
            k = g->nodes[k].in[0];
        if (mimo_popcount64(s->H[k]) > 1) {
            mimo_graph_stacked_free(g);
            return MIMO_EINVAL;
        }
    }
    place(g, s, NULL);
    if (!(s->buf = calloc(s->len + 1, sizeof *s->buf))) {
        mimo_graph_stacked_free(g);
        return MIMO_ENOMEM;
    }
    place(g, s, s->buf);
    return 0;
}

int mimo_graph_stacked_on(const mimo_graph *g) { return g->stacked != NULL; }

/* ---- the pass ------------------------------------------------------------ */

mimo_real *mimo_stacked_dy(const mimo_graph *g, int k, int t, int b)
{
    const struct mimo_stacked *s = g->stacked;
    return s->dy[k] ? s->dy[k] + (size_t)t * (size_t)b * (size_t)g->nodes[k].width
                    : g->nodes[k].dy;
}

typedef struct {
    mimo_real *dy, *dz;      /* the node's own */
} saved;

/* Points node k's dy (and its dz where it is dy) and its parents' dy at
 * head t's slices; dz_base: the dz slices of a stacked kind (or NULL). */
static void point(mimo_graph *g, int k, int t, int b, saved *sv, mimo_real *dz_base)
{
    mimo_node *n = &g->nodes[k];
    sv->dy = n->dy, sv->dz = n->dz;
    if (n->dy)
        n->dy = mimo_stacked_dy(g, k, t, b);
    if (sv->dz && sv->dz == sv->dy)
        n->dz = n->dy;
    else if (dz_base)
        n->dz = dz_base + (size_t)t * (size_t)b * (size_t)n->width;
    for (int j = 0; j < n->n_in; j++)
        g->stacked->keep[j] = g->nodes[n->in[j]].dy;
    for (int j = 0; j < n->n_in; j++) {
        mimo_node *p = &g->nodes[n->in[j]];
        if (p->dy)
            p->dy = mimo_stacked_dy(g, n->in[j], t, b);
    }
}

static void restore(mimo_graph *g, int k, const saved *sv)
{
    mimo_node *n = &g->nodes[k];
    for (int j = n->n_in - 1; j >= 0; j--) /* a parent read twice: its own */
        g->nodes[n->in[j]].dy = g->stacked->keep[j];
    n->dy = sv->dy, n->dz = sv->dz;
}

/* Node k's backward for head t alone (diagnostics bracketing it). */
static void one_head(mimo_graph *g, int k, int t, const mimo_real *params,
                     mimo_real *const *grads, int b, saved *sv)
{
    mimo_node *n = &g->nodes[k];
    point(g, k, t, b, sv, NULL);
    if (g->diag && b > 0)
        mimo_diag_before(g, k, b);
    n->kind->backward(g, n, params, grads[t], b);
    if (g->diag && b > 0)
        mimo_diag_after(g, k, b);
    restore(g, k, sv);
}

/* A trunk node's stacked backward over the slices lo..hi of its heads
 * (those between that it does not reach hold zeros; their grads NULL);
 * 0, or -1 with nothing done. */
static int all_heads(mimo_graph *g, int k, const mimo_real *params,
                      mimo_real *const *grads, int b, saved *sv)
{
    struct mimo_stacked *s = g->stacked;
    mimo_real **reach = s->reach;
    mimo_node *n = &g->nodes[k];
    uint64_t H = s->H[k];
    int lo = lowest(H), hi = 63 - __builtin_clzll(H);
    for (int t = 0; t < s->T; t++)
        reach[t] = H >> t & 1 ? grads[t] : NULL;
    point(g, k, lo, b, sv, s->dz[k]);
    int rc = n->kind->backward_stacked(g, n, params, reach + lo, hi - lo + 1, b);
    restore(g, k, sv);
    return rc;
}

void mimo_graph_backward_stacked(mimo_graph *g, const mimo_real *params,
                                 mimo_real *const *grads, int b)
{
    struct mimo_stacked *s = g->stacked;
    saved sv;
    for (int i = 0; i < s->n_nodes; i++) { /* the used part of each slice set */
        int k = s->nodes[i];
        size_t len = (size_t)s->T * (size_t)b * (size_t)g->nodes[k].width;
        memset(s->dy[k], 0, sizeof *s->dy[k] * len);
    }
    if (g->diag && b > 0)
        mimo_diag_begin(g, b);
    for (int k = g->n_nodes - 1; k >= 0; k--) {
        mimo_node *n = &g->nodes[k];
        uint64_t H = s->H[k];
        if (!n->kind || !H || !(n->dy || n->fused))
            continue;
        double t0 = g->t_layer ? mimo_clock() : 0;
        if (!(mimo_popcount64(H) > 1 && n->kind->backward_stacked &&
              !all_heads(g, k, params, grads, b, &sv)))
            for (uint64_t r = H; r; r &= r - 1)
                one_head(g, k, lowest(r), params, grads, b, &sv);
        if (g->t_layer)
            g->t_layer[g->n_nodes + k] += mimo_clock() - t0;
    }
    if (g->diag && b > 0)
        mimo_diag_end(g, b);
}
