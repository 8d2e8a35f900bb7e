/* balance.c — task balancing on the shared parameters (balance.h).
 * Which parameters are shared is found from the graph: the heads whose
 * loss a layer's output feeds (propagated from the heads to their
 * ancestors); a parameter block (a layer's tensor, or one block that
 * `shares` gives several layers) is shared when the layers using it reach
 * two heads or more together. The projection runs in double on the
 * global per-head gradients, identically on every rank. */
#include "core/balance.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph_impl.h"
#include "mimo/error.h"
#include "mimo/rng.h"

typedef struct {
    size_t off, size;
    uint64_t heads;        /* the heads the block's users reach */
} range;

struct mimo_balance {
    int T;
    size_t n;              /* trained values */
    mimo_real **g;         /* per head (n) */
    range *sh;             /* the shared blocks, by offset */
    int n_sh;
    size_t len;            /* values in them */
    double *d;             /* (T, len): the heads' shared gradients */
    double *p, *acc, *sq;  /* (len): a projected one, their sum; (T): the
                            * original ones' squared norms */
    int *order;            /* (T) */
};

static int by_off(const void *x, const void *y)
{
    const range *a = x, *b = y;
    return (a->off > b->off) - (a->off < b->off);
}

/* Per parameter block (by offset): the heads its users reach; the shared
 * ones into b->sh (tensors sorted by offset: a block several layers
 * use appears once per layer, with the heads each reaches). */
static int find_shared(const mimo_graph *g, mimo_balance *b)
{
    uint64_t *H = calloc((size_t)g->n_nodes, sizeof *H);
    size_t cap = 0;
    for (int k = 0; k < g->n_nodes; k++)
        cap += (size_t)g->nodes[k].n_tensors;
    range *r = malloc(sizeof *r * (cap + 1));
    int n = 0, rc = !H || !r ? -1 : 0;
    if (!rc)
        mimo_graph_head_sets(g, H);
    for (int k = 0; !rc && k < g->n_nodes; k++)
        for (int t = 0; t < g->nodes[k].n_tensors; t++) {
            const mimo_tensor *x = &g->nodes[k].tensors[t];
            if (x->trained)
                r[n].off = x->off, r[n].size = x->size, r[n++].heads = H[k];
        }
    if (!rc)
        qsort(r, (size_t)n, sizeof *r, by_off);
    for (int i = 0; !rc && i < n;) {
        range blk = r[i];
        for (i++; i < n && r[i].off == blk.off; i++)
            blk.heads |= r[i].heads;
        if (mimo_popcount64(blk.heads) >= 2)
            b->sh[b->n_sh++] = blk, b->len += blk.size;
    }
    free(H);
    free(r);
    return rc;
}

int mimo_balance_create(const mimo_graph *g, mimo_balance **out)
{
    mimo_balance *b = calloc(1, sizeof *b);
    size_t cap = 0;
    *out = NULL;
    for (int k = 0; k < g->n_nodes; k++)
        cap += (size_t)g->nodes[k].n_tensors;
    int rc = b ? 0 : -1;
    if (!rc) {
        b->T = g->n_heads;
        b->n = g->n_trained;
        b->g = calloc((size_t)b->T, sizeof *b->g);
        b->sh = malloc(sizeof *b->sh * (cap + 1));
        b->sq = calloc((size_t)b->T, sizeof *b->sq);
        b->order = calloc((size_t)b->T, sizeof *b->order);
        rc = !b->g || !b->sh || !b->sq || !b->order || g->n_heads > 64 ? -1 : 0;
    }
    for (int h = 0; !rc && h < b->T; h++)
        rc = (b->g[h] = calloc(b->n ? b->n : 1, sizeof(mimo_real))) ? 0 : -1;
    if (!rc)
        rc = find_shared(g, b);
    if (!rc) {
        b->d = malloc(sizeof *b->d * ((size_t)b->T * b->len + 1));
        b->p = malloc(sizeof *b->p * (b->len + 1));
        b->acc = malloc(sizeof *b->acc * (b->len + 1));
        rc = b->d && b->p && b->acc ? 0 : -1;
    }
    if (rc) {
        mimo_balance_free(&b);
        return g->n_heads > 64
                   ? mimo_error(MIMO_EINVAL, "task_balancing handles up to 64 heads")
                   : mimo_error(MIMO_ENOMEM, "out of memory for task balancing");
    }
    *out = b;
    return 0;
}

void mimo_balance_free(mimo_balance **bp)
{
    mimo_balance *b = bp ? *bp : NULL;
    if (!b)
        return;
    for (int h = 0; b->g && h < b->T; h++)
        free(b->g[h]);
    free(b->g);
    free(b->sh);
    free(b->d);
    free(b->p);
    free(b->acc);
    free(b->sq);
    free(b->order);
    free(b);
    *bp = NULL;
}

mimo_real *mimo_balance_grads(mimo_balance *b, int h) { return b->g[h]; }
size_t mimo_balance_shared(const mimo_balance *b) { return b->len; }

void mimo_balance_begin(mimo_balance *b)
{
    for (int h = 0; h < b->T; h++)
        memset(b->g[h], 0, sizeof(mimo_real) * b->n);
}

void mimo_balance_order(int n_heads, uint64_t seed, long epoch, long step, int i,
                        int *order)
{
    uint64_t key = ((uint64_t)epoch << 32 ^ (uint64_t)step) + 1, perm[64];
    mimo_rng r;
    mimo_rng_seed(&r, seed ^ key * 0xd1342543de82ef95ULL ^
                          (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL);
    mimo_rng_permutation(&r, perm, (uint64_t)(n_heads - 1));
    for (int k = 0; k < n_heads - 1; k++) /* the others: skip i itself */
        order[k] = (int)perm[k] + ((int)perm[k] >= i);
}

/* The least-norm point between two vectors with these dot products:
 * gamma of the first, and its squared norm (Sener & Koltun's
 * _min_norm_element_from2, its clamps included). */
static double from2(double v1v1, double v1v2, double v2v2, double *cost)
{
    if (v1v2 >= v1v1)
        return *cost = v1v1, 0.999;
    if (v1v2 >= v2v2)
        return *cost = v2v2, 0.001;
    double gamma = -1.0 * ((v1v2 - v2v2) / (v1v1 + v2v2 - 2 * v1v2));
    *cost = v2v2 + gamma * (v1v2 - v2v2);
    return gamma;
}

void mimo_balance_min_norm(const double *M, int T, double *alpha)
{
    double dmin = 1e8, best_c = 1; /* the published solver's start */
    int bi = 0, bj = T > 1 ? 1 : 0;
    for (int i = 0; i < T; i++)
        for (int j = i + 1; j < T; j++) {
            double d, c = from2(M[i * T + i], M[i * T + j], M[j * T + j], &d);
            if (d < dmin)
                dmin = d, best_c = c, bi = i, bj = j;
        }
    for (int t = 0; t < T; t++)
        alpha[t] = 0;
    alpha[bi] = best_c, alpha[bj] = 1 - best_c;
    if (T < 3) /* optimal for two */
        return;
    double Ma[64], na[64];
    for (int it = 0; it < 250; it++) {
        int t_it = 0;
        for (int a = 0; a < T; a++) {
            Ma[a] = 0;
            for (int c = 0; c < T; c++)
                Ma[a] += M[a * T + c] * alpha[c];
            if (Ma[a] < Ma[t_it])
                t_it = a;
        }
        double v1v1 = 0, v1v2 = 0, v2v2 = M[t_it * T + t_it], d;
        for (int a = 0; a < T; a++)
            v1v1 += alpha[a] * Ma[a], v1v2 += alpha[a] * M[a * T + t_it];
        double nc = from2(v1v1, v1v2, v2v2, &d), change = 0;
        for (int a = 0; a < T; a++)
            na[a] = nc * alpha[a];
        na[t_it] += 1 - nc;
        for (int a = 0; a < T; a++)
            change += fabs(na[a] - alpha[a]);
        if (change < 1e-5)
            return;
        memcpy(alpha, na, sizeof *alpha * (size_t)T);
    }
}

/* The heads' shared parts into d, summed over the ranks in chunks. */
static int gather_shared(mimo_balance *b, int (*reduce)(void *, double *, int),
                         void *state)
{
    for (int h = 0; h < b->T; h++) {
        double *d = b->d + (size_t)h * b->len;
        for (int i = 0; i < b->n_sh; i++, d += b->sh[i - 1].size)
            for (size_t v = 0; v < b->sh[i].size; v++)
                d[v] = (double)b->g[h][b->sh[i].off + v];
    }
    size_t all = (size_t)b->T * b->len, chunk = (size_t)1 << 26;
    for (size_t o = 0; reduce && o < all; o += chunk) {
        int rc = reduce(state, b->d + o, (int)(all - o < chunk ? all - o : chunk));
        if (rc)
            return rc;
    }
    return 0;
}

/* x . y in eight running sums (value i into sum i % 8), added in a fixed
 * tree: independent lanes the compiler vectorizes without reordering a
 * sum, so every machine (and every rank) rounds alike; one running sum
 * was a chain of dependent adds, a third of a pcgrad step. */
static double dot(const double *x, const double *y, size_t n)
{
    double s[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += x[i + k] * y[i + k];
    for (int k = 0; i < n; i++, k++)
        s[k] += x[i] * y[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

/* grads = the heads' gradients summed in double, head by head, a block of
 * values at a time (the heads in the inner loop were a scalar loop). */
static void sum_heads(const mimo_balance *b, mimo_real *grads)
{
    enum { BLOCK = 512 };
    double s[BLOCK];
    for (size_t v0 = 0; v0 < b->n; v0 += BLOCK) {
        size_t len = b->n - v0 < BLOCK ? b->n - v0 : BLOCK;
        for (size_t v = 0; v < len; v++)
            s[v] = 0;
        for (int h = 0; h < b->T; h++) {
            const mimo_real *g = b->g[h] + v0;
            for (size_t v = 0; v < len; v++)
                s[v] += g[v];
        }
        for (size_t v = 0; v < len; v++)
            grads[v0 + v] = (mimo_real)s[v];
    }
}

int mimo_balance_pcgrad(mimo_balance *b, mimo_real *grads, int rank,
                        uint64_t seed, long epoch, long step,
                        int (*reduce)(void *state, double *v, int n), void *state)
{
    int T = b->T, rc = gather_shared(b, reduce, state);
    if (rc)
        return rc;
    sum_heads(b, grads); /* every value: this rank's sum */
    for (int h = 0; h < T; h++)
        b->sq[h] = dot(b->d + (size_t)h * b->len, b->d + (size_t)h * b->len, b->len);
    double *acc = b->acc;
    memset(acc, 0, sizeof *acc * b->len);
    for (int i = 0; i < T; i++) {
        memcpy(b->p, b->d + (size_t)i * b->len, sizeof *b->p * b->len);
        mimo_balance_order(T, seed, epoch, step, i, b->order);
        for (int k = 0; k < T - 1; k++) {
            int j = b->order[k];
            const double *gj = b->d + (size_t)j * b->len;
            double c = dot(b->p, gj, b->len);
            if (c < 0 && b->sq[j] > 0)
                for (size_t v = 0; v < b->len; v++)
                    b->p[v] -= c / b->sq[j] * gj[v];
        }
        for (size_t v = 0; v < b->len; v++)
            acc[v] += b->p[v];
    }
    /* rank 0 holds the shared values' gradient, the others zeros: the
     * exchange's sum over the ranks is then exactly it */
    for (size_t i = 0, o = 0; i < (size_t)b->n_sh; o += b->sh[i].size, i++)
        for (size_t v = 0; v < b->sh[i].size; v++)
            grads[b->sh[i].off + v] = rank == 0 ? (mimo_real)acc[o + v] : 0;
    return 0;
}

void mimo_balance_gradnorm(int T, const double *sq, const double *loss,
                           const double *l0, const int *active,
                           const mimo_real *w, double alpha, double *grad)
{
    double gbar = 0, rbar = 0;
    int n = 0;
    for (int h = 0; h < T; h++)
        if (active[h])
            gbar += sqrt(sq[h]), rbar += loss[h] / l0[h], n++;
    for (int h = 0; h < T; h++) {
        grad[h] = 0;
        if (!active[h] || w[h] == 0)
            continue;
        double G = sqrt(sq[h]), r = loss[h] / l0[h] / (rbar / n);
        double target = gbar / n * pow(r, alpha), d = G - target;
        grad[h] = (d > 0 ? 1 : d < 0 ? -1 : 0) * G / (double)w[h];
    }
}
