/* sparse.c — the row-sparse tables of a model and the rows a step
 * touched (see sparse.h), and `local_rows`, the one-process exchange
 * that clears and updates only those rows. */
#include "core/sparse.h"

#include <stdlib.h>
#include <string.h>

#include "core/graph_impl.h"
#include "mimo/error.h"

typedef struct {
    mimo_sparse_table t;
    unsigned char *mark;   /* t.rows bytes, zeros between uses */
    int32_t *local;        /* this process's rows of the step */
    int32_t *all;          /* the step's rows, in the order noted */
    size_t n_all, cap_all;
} table;

struct mimo_sparse {
    mimo_model *m;
    int n;
    table *tab;            /* by offset */
    int whole;             /* clear the tables in full at the next begin */
    int n_dense;           /* the ranges of the buffer outside the tables */
    size_t *lo, *hi;
};

static int by_offset(const void *a, const void *b)
{
    size_t x = ((const table *)a)->t.off, y = ((const table *)b)->t.off;
    return x < y ? -1 : x > y;
}

void mimo_sparse_free(mimo_sparse **sp)
{
    mimo_sparse *s = sp ? *sp : NULL;
    if (!s)
        return;
    for (int k = 0; s->tab && k < s->n; k++) {
        free(s->tab[k].mark);
        free(s->tab[k].local);
        free(s->tab[k].all);
    }
    free(s->tab);
    free(s->lo);
    free(s->hi);
    free(s);
    *sp = NULL;
}

/* Each table's marks and row lists: a process touches max_touched rows
 * at most, `ranks` of them as many (never more than the table). */
static int take_lists(mimo_sparse *s, int ranks)
{
    for (int k = 0; k < s->n; k++) {
        table *t = &s->tab[k];
        size_t cap = t->t.max_touched;
        t->cap_all = (size_t)ranks * cap < (size_t)t->t.rows
                         ? (size_t)ranks * cap : (size_t)t->t.rows;
        t->mark = calloc((size_t)t->t.rows, 1);
        t->local = malloc(sizeof(int32_t) * (cap ? cap : 1));
        t->all = malloc(sizeof(int32_t) * (t->cap_all ? t->cap_all : 1));
        if (!t->mark || !t->local || !t->all)
            return -1;
    }
    return 0;
}

/* The ranges of [0, n) outside the tables. */
static int dense_ranges(mimo_sparse *s, size_t n)
{
    s->lo = malloc(sizeof(size_t) * (size_t)(s->n + 1));
    s->hi = malloc(sizeof(size_t) * (size_t)(s->n + 1));
    if (!s->lo || !s->hi)
        return -1;
    size_t at = 0;
    for (int k = 0; k <= s->n; k++) {
        size_t end = k < s->n ? s->tab[k].t.off : n;
        if (end > at) {
            s->lo[s->n_dense] = at;
            s->hi[s->n_dense++] = end;
        }
        if (k < s->n)
            at = end + (size_t)s->tab[k].t.rows * (size_t)s->tab[k].t.width;
    }
    return 0;
}

int mimo_sparse_create(mimo_model *m, size_t n_grads, int ranks, mimo_sparse **out)
{
    *out = NULL;
    const mimo_graph *g = mimo_model_graph(m);
    const mimo_train_spec *t = &mimo_graph_spec(g)->train;
    int n = mimo_graph_sparse_tables(g, NULL, 0);
    /* the rows a step touches are its backward's: with micro-batches
     * (accumulate) or per-head gradients combined on one rank
     * (task_balancing) they are not, and the tables are summed in full */
    if (n == 0 || t->accumulate > 1 || t->task_balancing != MIMO_BALANCING_NONE)
        return 0;
    mimo_sparse *s = calloc(1, sizeof *s);
    mimo_sparse_table *ts = calloc((size_t)n, sizeof *ts);
    if (s && ts && (s->tab = calloc((size_t)n, sizeof *s->tab))) {
        s->m = m, s->n = n, s->whole = 1;
        mimo_graph_sparse_tables(g, ts, n);
        for (int k = 0; k < n; k++)
            s->tab[k].t = ts[k];
        qsort(s->tab, (size_t)n, sizeof *s->tab, by_offset);
    }
    free(ts);
    if (!s || !s->tab || take_lists(s, ranks) || dense_ranges(s, n_grads)) {
        mimo_sparse_free(&s);
        return mimo_error(MIMO_ENOMEM, "out of memory for the embedding tables' "
                          "row lists");
    }
    *out = s;
    return 0;
}

int mimo_sparse_count(const mimo_sparse *s) { return s->n; }

const mimo_sparse_table *mimo_sparse_table_at(const mimo_sparse *s, int k)
{
    return &s->tab[k].t;
}

int mimo_sparse_dense(const mimo_sparse *s, const size_t **lo, const size_t **hi)
{
    *lo = s->lo;
    *hi = s->hi;
    return s->n_dense;
}

void mimo_sparse_begin(mimo_sparse *s, mimo_real *grads)
{
    for (int k = 0; k < s->n; k++) {
        table *t = &s->tab[k];
        size_t w = (size_t)t->t.width;
        if (s->whole)
            memset(grads + t->t.off, 0, sizeof *grads * (size_t)t->t.rows * w);
        else
            for (size_t i = 0; i < t->n_all; i++)
                memset(grads + t->t.off + (size_t)t->all[i] * w, 0, sizeof *grads * w);
        t->n_all = 0;
    }
    s->whole = 0;
}

size_t mimo_sparse_local(mimo_sparse *s, int k, const int32_t **rows)
{
    table *t = &s->tab[k];
    *rows = t->local;
    return mimo_graph_touched_rows(mimo_model_graph(s->m), &t->t,
                                   mimo_model_backward_rows(s->m), t->mark, t->local);
}

void mimo_sparse_note(mimo_sparse *s, int k, int32_t row)
{
    table *t = &s->tab[k];
    if (!t->mark[row] && t->n_all < t->cap_all) {
        t->mark[row] = 1;
        t->all[t->n_all++] = row;
    }
}

void mimo_sparse_noted(mimo_sparse *s)
{
    for (int k = 0; k < s->n; k++)
        for (size_t i = 0; i < s->tab[k].n_all; i++)
            s->tab[k].mark[s->tab[k].all[i]] = 0;
}

size_t mimo_sparse_rows(const mimo_sparse *s, int k, const int32_t **rows)
{
    *rows = s->tab[k].all;
    return s->tab[k].n_all;
}

void mimo_sparse_forget(mimo_sparse *s)
{
    for (int k = 0; k < s->n; k++)
        s->tab[k].n_all = 0;
}

void mimo_sparse_note_local(mimo_sparse *s)
{
    for (int k = 0; k < s->n; k++) {
        const int32_t *rows;
        size_t n = mimo_sparse_local(s, k, &rows);
        memcpy(s->tab[k].all, rows, sizeof *rows * n); /* distinct already */
        s->tab[k].n_all = n;
    }
}

void mimo_sparse_update(mimo_sparse *s, mimo_optim *o, mimo_real *params,
                        mimo_real *grads, double lr)
{
    if (!mimo_optim_row_sparse(o)) {
        /* the whole update on the summed gradient (zeros off the rows);
         * decay and clipping write the buffer as scratch: the next
         * begin clears it all */
        mimo_optim_step(o, params, grads, grads, lr);
        s->whole |= mimo_optim_prepares(o);
        return;
    }
    mimo_optim_begin_step(o);
    for (int i = 0; i < s->n_dense; i++)
        mimo_optim_apply(o, s->lo[i], s->hi[i], params, grads + s->lo[i], 1, lr);
    for (int k = 0; k < s->n; k++) {
        const table *t = &s->tab[k];
        size_t w = (size_t)t->t.width;
        for (size_t i = 0; i < t->n_all; i++) {
            size_t at = t->t.off + (size_t)t->all[i] * w;
            mimo_optim_apply(o, at, at + w, params, grads + at, 1, lr);
        }
    }
}

/* ---- local_rows: one process ------------------------------------------ */

static void local_rows_begin(void *state, mimo_real *grads, size_t n)
{
    mimo_sparse *s = state;
    (void)n;
    for (int i = 0; i < s->n_dense; i++)
        memset(grads + s->lo[i], 0, sizeof *grads * (s->hi[i] - s->lo[i]));
    mimo_sparse_begin(s, grads);
}

static int local_rows_finish(void *state, mimo_optim *o, mimo_real *params,
                             mimo_real *grads, size_t n, double lr)
{
    mimo_sparse *s = state;
    (void)n;
    mimo_sparse_note_local(s);
    mimo_sparse_update(s, o, params, grads, lr);
    return 0;
}

static int local_rows_checksum(void *state, const mimo_real *params, size_t n,
                               long long step)
{
    (void)state, (void)params, (void)n, (void)step;
    return 0;
}

static const mimo_exchange_ops local_rows_ops = {
    .name = "local_rows",
    .owns = 0,
    .begin_step = local_rows_begin,
    .finish = local_rows_finish,
    .checksum = local_rows_checksum,
};

mimo_exchange mimo_exchange_local_rows(mimo_sparse *s)
{
    return (mimo_exchange){.ops = &local_rows_ops, .state = s, .writes_state = 1};
}
