/* diag.c — per-head gradient diagnostics (train.grad_diagnostics): each
 * head's gradient with respect to the shared representation, as the Gram
 * matrix of the heads' gradients (norms on its diagonal, cosines from it).
 *
 * The shared representation is found from the graph: H(n), the heads
 * whose loss depends on node n's output, is propagated from the heads up
 * to their ancestors; a tensor where the heads part is one that carries a
 * gradient (something trained lies above it), is reached by two heads or
 * more, is no head's output, and whose every consumer serves a single
 * head (a view — reshape, flatten — is its parent's tensor, its consumers
 * its parent's). In `trunk -> h -> {head towers}` that is h.
 *
 * No extra backward: every consumer c of such a tensor t adds head H(c)'s
 * part of the gradient into dy(t), so the backward this step runs anyway
 * is bracketed at those consumers — dy(t) copied before c's backward, the
 * difference after it added to head H(c)'s gradient at t. The training
 * computation is untouched (the same operations in the same order: the
 * diagnostics never change the weights). After the backward, each pair
 * of heads' dot products over the rows and units of every such tensor
 * adds into the Gram matrix (double). Cost: per step, two copies of each
 * shared tensor per consumer and T(T+1)/2 dot products of its size. */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "core/graph.h"
#include "core/graph_impl.h"
#include "core/kind.h"
#include "mimo/error.h"

typedef struct {
    int node;               /* the shared tensor */
    mimo_real *snap;        /* (max_batch, width): dy before a consumer */
    mimo_real **head;       /* per head (max_batch, width) or NULL */
} shared_t;

struct mimo_diag {
    int n_shared;
    shared_t *sh;
    int *head_of;           /* per node: its single head when it consumes a
                             * shared tensor, else -1 */
    int *first_of;          /* per node: index of its first entry in use */
    int (*use)[2];          /* (node, shared index) pairs, grouped by node */
    int n_use;
    double *gram;           /* (n_heads, n_heads), upper triangle used */
    double seconds;         /* spent in the brackets below, for mimo bench */
    int group;              /* several backwards make one (mimo_graph_diag_group) */
    int paused;             /* backwards add nothing (mimo_graph_diag_pause) */
    uint64_t covered;       /* heads with a gradient at some shared tensor */
};

static int is_view(const mimo_node *n) { return MIMO_KIND_HAS(n, MIMO_KIND_VIEW); }

/* The tensor a node's output is: itself, or what its views view. */
static int root_of(const mimo_graph *g, int k)
{
    while (g->nodes[k].kind && is_view(&g->nodes[k]))
        k = g->nodes[k].in[0];
    return k;
}

static int single_head(uint64_t m)
{
    for (int h = 0; h < 64; h++)
        if (m == (1ULL << h))
            return h;
    return -1;
}

/* mixed[t]: some consumer of tensor t (through views) serves more than
 * one head (one pass over the graph's edges). */
static void mark_mixed(const mimo_graph *g, const uint64_t *H, int *mixed)
{
    for (int c = 0; c < g->n_nodes; c++) {
        const mimo_node *n = &g->nodes[c];
        if (!n->kind || is_view(n))
            continue;
        for (int j = 0; j < n->n_in; j++)
            if (mimo_popcount64(H[c]) != 1)
                mixed[root_of(g, n->in[j])] = 1;
    }
}

/* is_head[t] on entry; each node's index among the shared tensors (or -1)
 * in it on return. */
static int find_shared(mimo_graph *g, struct mimo_diag *d, const uint64_t *H,
                       int *is_head)
{
    size_t B = (size_t)g->max_batch;
    int *mixed = calloc((size_t)g->n_nodes, sizeof *mixed);
    d->sh = calloc((size_t)g->n_nodes, sizeof *d->sh);
    if (!d->sh || !mixed) {
        free(mixed);
        return -1;
    }
    mark_mixed(g, H, mixed);
    for (int t = 0; t < g->n_nodes; t++) {
        const mimo_node *n = &g->nodes[t];
        int skip = !n->dy || (n->kind && is_view(n)) || is_head[t] ||
                   mimo_popcount64(H[t]) < 2 || mixed[t];
        is_head[t] = skip ? -1 : d->n_shared;
        if (skip)
            continue;
        shared_t *s = &d->sh[d->n_shared++];
        s->node = t;
        s->snap = malloc(sizeof(mimo_real) * B * (size_t)n->width);
        s->head = calloc((size_t)g->n_heads, sizeof *s->head);
        if (!s->snap || !s->head)
            return -1;
        for (int h = 0; h < g->n_heads; h++)
            if ((H[t] >> h & 1) &&
                !(s->head[h] = malloc(sizeof(mimo_real) * B * (size_t)n->width)))
                return -1;
        d->covered |= H[t];
    }
    free(mixed);
    return 0;
}

/* The (consumer, shared tensor) pairs the backward brackets, by node;
 * index_of: each node's index among the shared tensors, or -1. */
static int find_uses(const mimo_graph *g, struct mimo_diag *d, const uint64_t *H,
                     const int *index_of)
{
    size_t cap = 0;
    for (int c = 0; c < g->n_nodes; c++)
        cap += (size_t)g->nodes[c].n_in;
    d->use = malloc(sizeof *d->use * (cap + 1));
    d->head_of = malloc(sizeof(int) * (size_t)g->n_nodes);
    d->first_of = malloc(sizeof(int) * (size_t)(g->n_nodes + 1));
    if (!d->use || !d->head_of || !d->first_of)
        return -1;
    for (int c = 0; c < g->n_nodes; c++) {
        const mimo_node *n = &g->nodes[c];
        d->first_of[c] = d->n_use;
        d->head_of[c] = -1;
        for (int j = 0; j < n->n_in && n->kind && !is_view(n); j++) {
            int i = index_of[root_of(g, n->in[j])], seen = 0;
            for (int u = d->first_of[c]; u < d->n_use; u++)
                seen |= d->use[u][1] == i; /* a tensor read twice: once */
            if (i < 0 || seen)
                continue;
            d->use[d->n_use][0] = c, d->use[d->n_use++][1] = i;
            d->head_of[c] = single_head(H[c]);
        }
    }
    d->first_of[g->n_nodes] = d->n_use;
    return 0;
}

void mimo_graph_diag_free(mimo_graph *g)
{
    struct mimo_diag *d = g->diag;
    if (!d)
        return;
    for (int i = 0; d->sh && i < d->n_shared; i++) {
        free(d->sh[i].snap);
        for (int h = 0; d->sh[i].head && h < g->n_heads; h++)
            free(d->sh[i].head[h]);
        free(d->sh[i].head);
    }
    free(d->sh);
    free(d->use);
    free(d->head_of);
    free(d->first_of);
    free(d->gram);
    free(d);
    g->diag = NULL;
}

int mimo_graph_diag_enable(mimo_graph *g)
{
    const char *file = g->spec->file ? g->spec->file : "<config>";
    if (g->diag)
        return 0;
    if (g->n_heads > 64)
        return mimo_error(MIMO_EINVAL, "%s: grad_diagnostics handles up to 64 heads, "
                          "the network has %d", file, g->n_heads);
    uint64_t *H = calloc((size_t)g->n_nodes, sizeof *H);
    int *is_head = calloc((size_t)g->n_nodes, sizeof *is_head);
    struct mimo_diag *d = calloc(1, sizeof *d);
    int rc = !H || !is_head || !d ? -1 : 0;
    g->diag = d;
    if (!rc) {
        for (int h = 0; h < g->n_heads; h++)
            is_head[g->heads[h].node] = 1;
        mimo_graph_head_sets(g, H);
        d->gram = calloc((size_t)g->n_heads * (size_t)g->n_heads, sizeof *d->gram);
        rc = !d->gram || find_shared(g, d, H, is_head) || find_uses(g, d, H, is_head)
                 ? -1 : 0;
    }
    free(H);
    free(is_head);
    if (rc) {
        mimo_graph_diag_free(g);
        return mimo_error(MIMO_ENOMEM, "out of memory for the gradient diagnostics");
    }
    if (mimo_popcount64(d->covered) < 2) {
        mimo_graph_diag_free(g);
        return mimo_error(MIMO_EINVAL, "%s: grad_diagnostics: no tensor where two "
                          "heads' paths part below trained layers (it needs layers "
                          "shared by two heads or more, each head leaving them "
                          "through layers of its own)", file);
    }
    return 0;
}

int mimo_graph_diag_on(const mimo_graph *g) { return g->diag != NULL; }

int mimo_graph_diag_covers(const mimo_graph *g, int h)
{
    return g->diag && (g->diag->covered >> h & 1);
}

const double *mimo_graph_diag_gram(const mimo_graph *g)
{
    return g->diag ? g->diag->gram : NULL;
}

double mimo_graph_diag_seconds(const mimo_graph *g)
{
    return g->diag ? g->diag->seconds : 0;
}

void mimo_graph_diag_clear(mimo_graph *g)
{
    if (g->diag)
        memset(g->diag->gram, 0, sizeof *g->diag->gram * (size_t)g->n_heads *
                                     (size_t)g->n_heads);
}

/* ---- inside the backward (graph.c) ------------------------------------ */

static void begin(mimo_graph *g, int b);
static void end(mimo_graph *g, int b);

void mimo_graph_diag_group(mimo_graph *g, int on, int b)
{
    if (!g->diag || b <= 0)
        return;
    if (on)
        begin(g, b);
    else
        end(g, b);
    g->diag->group = on;
}

void mimo_diag_begin(mimo_graph *g, int b)
{
    if (!g->diag->group && !g->diag->paused)
        begin(g, b);
}

void mimo_diag_end(mimo_graph *g, int b)
{
    if (!g->diag->group && !g->diag->paused)
        end(g, b);
}

void mimo_graph_diag_pause(mimo_graph *g, int on)
{
    if (g->diag)
        g->diag->paused = on;
}

int mimo_graph_diag_first(const mimo_graph *g)
{
    int first = g->n_nodes;
    for (int i = 0; g->diag && i < g->diag->n_shared; i++)
        first = g->diag->sh[i].node < first ? g->diag->sh[i].node : first;
    return first;
}

static void begin(mimo_graph *g, int b)
{
    struct mimo_diag *d = g->diag;
    double t0 = mimo_clock();
    for (int i = 0; i < d->n_shared; i++) {
        size_t len = (size_t)b * (size_t)g->nodes[d->sh[i].node].width;
        for (int h = 0; h < g->n_heads; h++)
            if (d->sh[i].head[h])
                memset(d->sh[i].head[h], 0, sizeof(mimo_real) * len);
    }
    d->seconds += mimo_clock() - t0;
}

/* The gradient of tensor t that consumer k's backward adds into: head
 * h's slice under the stacked backward (core/stacked.c), else t's dy. */
static const mimo_real *dy_of(const mimo_graph *g, int t, int h, int b)
{
    return g->stacked && h >= 0 ? mimo_stacked_dy(g, t, h, b) : g->nodes[t].dy;
}

void mimo_diag_before(mimo_graph *g, int k, int b)
{
    struct mimo_diag *d = g->diag;
    if (d->paused || d->first_of[k] == d->first_of[k + 1])
        return;
    double t0 = mimo_clock();
    for (int u = d->first_of[k]; u < d->first_of[k + 1]; u++) {
        shared_t *s = &d->sh[d->use[u][1]];
        const mimo_node *t = &g->nodes[s->node];
        memcpy(s->snap, dy_of(g, s->node, d->head_of[k], b),
               sizeof(mimo_real) * (size_t)b * (size_t)t->width);
    }
    d->seconds += mimo_clock() - t0;
}

void mimo_diag_after(mimo_graph *g, int k, int b)
{
    struct mimo_diag *d = g->diag;
    int h = d->head_of[k];
    if (d->paused || h < 0 || d->first_of[k] == d->first_of[k + 1])
        return;
    double t0 = mimo_clock();
    for (int u = d->first_of[k]; u < d->first_of[k + 1] && h >= 0; u++) {
        shared_t *s = &d->sh[d->use[u][1]];
        const mimo_node *t = &g->nodes[s->node];
        size_t len = (size_t)b * (size_t)t->width;
        mimo_real *gh = s->head[h];
        const mimo_real *dy = dy_of(g, s->node, h, b);
        for (size_t i = 0; i < len; i++)
            gh[i] += dy[i] - s->snap[i];
    }
    d->seconds += mimo_clock() - t0;
}

static void end(mimo_graph *g, int b)
{
    struct mimo_diag *d = g->diag;
    int T = g->n_heads;
    double t0 = mimo_clock();
    for (int i = 0; i < d->n_shared; i++) {
        size_t len = (size_t)b * (size_t)g->nodes[d->sh[i].node].width;
        for (int x = 0; x < T; x++)
            for (int y = x; y < T && d->sh[i].head[x]; y++) {
                const mimo_real *p = d->sh[i].head[x], *q = d->sh[i].head[y];
                if (!q)
                    continue;
                double s = 0;
                for (size_t r = 0; r < len; r++)
                    s += (double)p[r] * (double)q[r];
                d->gram[x * T + y] += s;
            }
    }
    d->seconds += mimo_clock() - t0;
}
