/* model.c — a model's buffers, the parts of a training step, evaluation
 * and prediction from a mimo_source. Owns the flat parameter and gradient
 * buffers, the optimizer, the batch buffers and the epoch order; the graph
 * does the math. MPI enters only through the partition (rank, size) and
 * the exchange (mimo/exchange.h: the gradient sum and the update, row
 * weights' sums, timings), set once by mimo_model_set_exchange. */
#include "core/model.h"

#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "mimo/error.h"
#include "mimo/rng.h"
#include "core/balance.h"
#include "core/gather.h"
#include "core/graph_impl.h"
#include "core/sparse.h"

struct mimo_model {
    const mimo_spec *spec;
    mimo_graph *g;
    mimo_optim *opt;
    mimo_real *params, *grads;
    double lr;
    int rank, size;
    mimo_exchange x;                       /* local, or the runtime's */
    mimo_sparse *sparse;                   /* local_rows' state, or NULL */
    long epoch;                            /* of the step in progress */
    const uint64_t *step_rows;             /* its rows (global indices) */
    int backward_rows;                     /* rows of this step's backward */
    const uint64_t *read_rows;             /* the rows read (global indices) */
    int acc;                               /* micro-steps per update (k) */
    int *micro;                            /* (k + 1) offsets of the micro-
                                            * batches in the rows read */
    uint64_t *plan_rows, *pre_rows;        /* (batch_size) this rank's rows
                                            * of the step, of the next step */
    int view_last;                         /* the micro-batch ends the step */
    mimo_real **view_in, **view_tgt;       /* the micro-batch's rows: */
    mimo_real **view_w;                    /* batch_in, batch_tgt, row_w
                                            * from its offset */
    int n_in, n_heads;
    const mimo_array **arr;                /* bound arrays: inputs, targets */
    int arr_targets;
    mimo_real **batch_in, **batch_tgt;     /* (max_batch, cols) staging; the
                                            * targets, then sample weights */
    mimo_real **row_w;                     /* per weighted head (max_batch) */
    double *denom;                         /* per head, the global sum of
                                            * the step's row weights (and a
                                            * fault flag) */
    double *scale;                         /* per head: gradient scale */
    double *scale1;                        /* the same, one head's only */
    mimo_balance *bal;                     /* pcgrad: per-head gradients,
                                            * or NULL */
    mimo_real **head_grads;                /* their buffers, for the stacked
                                            * backward (NULL: one backward
                                            * per head) */
    int mgda;                              /* mgda_ub: */
    mimo_real *scratch;                    /* (trained) the first pass's
                                            * parameter gradients, dropped */
    double *gram, *alpha;                  /* (T x T), (T) */
    int gradnorm;                          /* gradnorm: */
    double *gn_loss;                       /* (3T) the heads' losses this
                                            * step, their l0, the weights'
                                            * gradient */
    int *gn_active;                        /* (T) heads with a loss */
    double *head_loss;                     /* per head: scratch */
    mimo_head_stats *step;                 /* the last loss's sums */
    uint64_t *rows;                        /* (max_batch) row indices */
    uint64_t *perm;                        /* the epoch's order */
    size_t perm_len;
};

int mimo_stats_init(mimo_stats *st, int n_heads)
{
    memset(st, 0, sizeof *st);
    st->head = calloc((size_t)(n_heads > 0 ? n_heads : 1), sizeof *st->head);
    if (!st->head)
        return mimo_error(MIMO_ENOMEM, "out of memory for statistics");
    st->n_heads = n_heads;
    return 0;
}

int mimo_stats_bind(mimo_stats *st, const mimo_graph *g)
{
    return st->metrics ? 0 : mimo_metrics_create(g, &st->metrics);
}

void mimo_stats_reset(mimo_stats *st)
{
    memset(st->head, 0, sizeof *st->head * (size_t)st->n_heads);
    if (st->metrics)
        mimo_metrics_reset(st->metrics);
    st->loss = 0;
    st->count = 0;
}

int mimo_stats_copy(mimo_stats *dst, const mimo_stats *src)
{
    memcpy(dst->head, src->head, sizeof *dst->head * (size_t)src->n_heads);
    dst->loss = src->loss, dst->count = src->count;
    return src->metrics && dst->metrics ? mimo_metrics_copy(dst->metrics, src->metrics)
                                        : 0;
}

void mimo_stats_free(mimo_stats *st)
{
    free(st->head);
    mimo_metrics_free(&st->metrics);
    memset(st, 0, sizeof *st);
}

double mimo_model_head_weight(const mimo_model *m, int h)
{
    if (mimo_graph_log_vars(m->g))
        return exp(-(double)mimo_model_params((mimo_model *)m)[h]);
    if (m->gradnorm) /* the configured weight is part of the head's loss */
        return m->spec->outputs[h].weight *
               (double)mimo_model_params((mimo_model *)m)[h];
    return m->spec->outputs[h].weight;
}

double mimo_model_total_loss(const mimo_model *m, const double *head_loss)
{
    int lv = mimo_graph_log_vars(m->g);
    double t = 0;
    for (int h = 0; h < m->n_heads; h++)
        if (!isnan(head_loss[h]))
            t += mimo_model_head_weight(m, h) * head_loss[h] +
                 (lv ? (double)mimo_model_params((mimo_model *)m)[h] : 0);
    return t;
}

void mimo_stats_finish(const mimo_model *m, mimo_stats *st)
{
    double *loss = m->head_loss;
    for (int h = 0; h < st->n_heads; h++) {
        mimo_head_stats *s = &st->head[h];
        if (st->metrics)
            mimo_metrics_values(st->metrics, h, s);
        /* mgda_ub: the epoch's mean of alpha_h times the head's weight */
        s->task_weight = m->mgda && st->metrics
                             ? mimo_metrics_balance_weight(st->metrics, h) *
                                   m->spec->outputs[h].weight
                             : mimo_model_head_weight(m, h);
        loss[h] = s->loss;
    }
    st->loss = mimo_model_total_loss(m, loss);
}

/* ---- creation ------------------------------------------------------------ */

/* The staging buffers hold the update's whole share of rows (all its
 * micro-batches: their row weights are summed before the first forward);
 * the graph's buffers one micro-batch. */
static int alloc_staging(mimo_model *m)
{
    int B = (int)m->spec->train.batch_size;
    m->arr = calloc((size_t)(m->n_in + 2 * m->n_heads), sizeof *m->arr);
    m->rows = malloc(sizeof *m->rows * (size_t)B);
    m->batch_in = calloc((size_t)m->n_in, sizeof *m->batch_in);
    m->batch_tgt = calloc(2 * (size_t)m->n_heads, sizeof *m->batch_tgt);
    m->row_w = calloc((size_t)m->n_heads, sizeof *m->row_w);
    m->denom = calloc((size_t)m->n_heads + 1, sizeof *m->denom);
    m->scale = calloc((size_t)m->n_heads, sizeof *m->scale);
    m->scale1 = calloc((size_t)m->n_heads, sizeof *m->scale1);
    m->step = calloc((size_t)m->n_heads, sizeof *m->step);
    m->head_loss = calloc((size_t)m->n_heads, sizeof *m->head_loss);
    m->micro = calloc((size_t)m->acc + 1, sizeof *m->micro);
    m->plan_rows = malloc(sizeof *m->plan_rows * (size_t)B);
    m->pre_rows = malloc(sizeof *m->pre_rows * (size_t)B);
    m->view_in = calloc((size_t)m->n_in + 1, sizeof *m->view_in);
    m->view_tgt = calloc(2 * (size_t)m->n_heads + 1, sizeof *m->view_tgt);
    m->view_w = calloc((size_t)m->n_heads + 1, sizeof *m->view_w);
    if (!m->scale1 || !m->micro || !m->plan_rows || !m->pre_rows || !m->view_in || !m->view_tgt ||
        !m->view_w)
        return -1;
    if (!m->head_loss || !m->arr || !m->rows || !m->batch_in || !m->batch_tgt || !m->row_w ||
        !m->denom || !m->scale || !m->step)
        return -1;
    for (int i = 0; i < m->n_in; i++)
        if (!(m->batch_in[i] = malloc(sizeof(mimo_real) * (size_t)B *
                                      (size_t)mimo_graph_input_width(m->g, i))))
            return -1;
    for (int h = 0; h < m->n_heads; h++) {
        const mimo_output_spec *o = mimo_graph_head_spec(m->g, h);
        if (!(m->batch_tgt[h] = malloc(sizeof(mimo_real) * (size_t)B *
                                       (size_t)mimo_graph_head_target_width(m->g, h))))
            return -1;
        if (o->sample_weight &&
            !(m->batch_tgt[m->n_heads + h] = malloc(sizeof(mimo_real) * (size_t)B)))
            return -1;
        if (mimo_graph_head_weighted(m->g, h) &&
            !(m->row_w[h] = malloc(sizeof(mimo_real) * (size_t)B)))
            return -1;
    }
    mimo_model_micro(m, 0, 1);
    return 0;
}

/* lazy adam: the optimizer learns where the embedding tables lie */
static int lazy_tables(mimo_model *m)
{
    int n = mimo_graph_sparse_tables(m->g, NULL, 0), rc = 0;
    if (!m->g->spec->train.opt.lazy || n == 0)
        return 0;
    mimo_sparse_table *t = calloc((size_t)n, sizeof *t);
    size_t *lo = calloc((size_t)n, sizeof *lo), *hi = calloc((size_t)n, sizeof *hi);
    if (!t || !lo || !hi)
        rc = mimo_error(MIMO_ENOMEM, "out of memory");
    for (int k = 0; !rc && k < mimo_graph_sparse_tables(m->g, t, n); k++) {
        lo[k] = t[k].off;
        hi[k] = t[k].off + (size_t)t[k].rows * (size_t)t[k].width;
    }
    if (!rc)
        rc = mimo_optim_set_lazy(m->opt, n, lo, hi);
    free(t);
    free(lo);
    free(hi);
    return rc;
}

/* task_balancing: per-head gradients, of parameters some heads share. */
static int balance_create(mimo_model *m)
{
    const char *file = m->spec->file ? m->spec->file : "<config>";
    if (m->n_heads < 2 || mimo_graph_log_vars(m->g))
        return mimo_error(MIMO_EINVAL, "%s: task_balancing needs two heads or more "
                          "and their fixed weights", file);
    if (m->spec->train.task_balancing == MIMO_BALANCING_GRADNORM) {
        size_t T = (size_t)m->n_heads;
        m->gradnorm = 1;
        m->gram = calloc(T * T + T, sizeof *m->gram);
        m->gn_loss = calloc(3 * T, sizeof *m->gn_loss);
        m->gn_active = calloc(T, sizeof *m->gn_active);
        if (!m->gram || !m->gn_loss || !m->gn_active)
            return mimo_error(MIMO_ENOMEM, "out of memory for task balancing");
        int rc = mimo_graph_diag_enable(m->g); /* the norms at the shared tensor */
        return rc == MIMO_EINVAL ? mimo_error(MIMO_EINVAL, "%s: task_balancing: "
                                              "gradnorm needs a tensor where two "
                                              "heads' paths part below trained "
                                              "layers", file) : rc;
    }
    if (m->spec->train.task_balancing == MIMO_BALANCING_MGDA_UB) {
        size_t T = (size_t)m->n_heads, nt = mimo_graph_trained_count(m->g);
        m->mgda = 1;
        m->scratch = malloc(sizeof *m->scratch * (nt ? nt : 1));
        m->gram = calloc(T * T, sizeof *m->gram);
        m->alpha = calloc(T, sizeof *m->alpha);
        if (!m->scratch || !m->gram || !m->alpha)
            return mimo_error(MIMO_ENOMEM, "out of memory for task balancing");
        /* the gradients at the shared representation: the diagnostics' */
        int rc = mimo_graph_diag_enable(m->g);
        return rc == MIMO_EINVAL ? mimo_error(MIMO_EINVAL, "%s: task_balancing: "
                                              "mgda_ub needs a tensor where two "
                                              "heads' paths part below trained "
                                              "layers", file) : rc;
    }
    int rc = mimo_balance_create(m->g, &m->bal);
    if (!rc && mimo_balance_shared(m->bal) == 0)
        rc = mimo_error(MIMO_EINVAL, "%s: task_balancing: no trained parameter is "
                        "shared by two heads (nothing to balance; use none)", file);
    if (rc)
        return rc;
    /* the heads' gradients in one backward; one backward per head when
     * the graph is not for it or its slices do not fit in memory */
    size_t T = (size_t)m->n_heads;
    if (mimo_graph_stacked_enable(m->g) ||
        !(m->head_grads = calloc(T, sizeof *m->head_grads)))
        return 0;
    for (size_t h = 0; h < T; h++)
        m->head_grads[h] = mimo_balance_grads(m->bal, (int)h);
    return 0;
}

int mimo_model_create(const mimo_spec *spec, mimo_model **out)
{
    *out = NULL;
    if (spec->train.batch_size < 1 || spec->train.batch_size > (1L << 30))
        return mimo_error(MIMO_EINVAL, "%s: batch_size %ld is out of range",
                          spec->file ? spec->file : "<config>",
                          spec->train.batch_size);
    if (spec->train.accumulate < 0 ||
        (spec->train.accumulate > 1 && spec->train.batch_size % spec->train.accumulate))
        return mimo_error(MIMO_EINVAL, "%s: accumulate %ld does not divide batch_size "
                          "%ld into equal micro-batches",
                          spec->file ? spec->file : "<config>", spec->train.accumulate,
                          spec->train.batch_size);
    mimo_model *m = calloc(1, sizeof *m);
    if (!m)
        return mimo_error(MIMO_ENOMEM, "out of memory creating the model");
    m->spec = spec;
    m->lr = spec->train.opt.lr;
    m->acc = spec->train.accumulate > 1 ? (int)spec->train.accumulate : 1;
    int rc = mimo_graph_compile(spec, (int)mimo_micro_batch(spec), 0, &m->g);
    if (rc) {
        mimo_model_free(&m);
        return rc;
    }
    m->n_heads = mimo_graph_n_heads(m->g);
    if ((spec->train.grad_diagnostics && (rc = mimo_graph_diag_enable(m->g))) ||
        (spec->train.task_balancing != MIMO_BALANCING_NONE && (rc = balance_create(m)))) {
        mimo_model_free(&m);
        return rc;
    }
    size_t n = mimo_graph_param_count(m->g), nt = mimo_graph_trained_count(m->g);
    m->n_in = mimo_graph_n_inputs(m->g);
    m->n_heads = mimo_graph_n_heads(m->g);
    m->params = calloc(n ? n : 1, sizeof(mimo_real));
    m->grads = calloc(nt ? nt : 1, sizeof(mimo_real));
    if (!m->params || !m->grads || alloc_staging(m)) {
        mimo_model_free(&m);
        return mimo_error(MIMO_ENOMEM, "out of memory creating the model");
    }
    if ((rc = mimo_optim_create(&spec->train.opt, nt, &m->opt)) ||
        (rc = lazy_tables(m))) {
        mimo_model_free(&m);
        return rc;
    }
    if (m->gradnorm) /* its weights sum to T after every update */
        mimo_optim_set_renorm(m->opt, (size_t)m->n_heads);
    mimo_graph_init_params(m->g, m->params, spec->train.seed);
    if ((rc = mimo_sparse_create(m, nt, 1, &m->sparse))) {
        mimo_model_free(&m);
        return rc;
    }
    mimo_model_set_exchange(m, 0, 1, NULL);
    *out = m;
    return 0;
}

void mimo_model_free(mimo_model **mp)
{
    mimo_model *m = mp ? *mp : NULL;
    if (!m)
        return;
    for (int i = 0; m->batch_in && i < m->n_in; i++)
        free(m->batch_in[i]);
    for (int h = 0; m->batch_tgt && h < 2 * m->n_heads; h++)
        free(m->batch_tgt[h]);
    for (int h = 0; m->row_w && h < m->n_heads; h++)
        free(m->row_w[h]);
    free(m->batch_in);
    free(m->batch_tgt);
    free(m->row_w);
    free(m->denom);
    free(m->scale);
    free(m->scale1);
    free(m->scratch);
    free(m->gram);
    free(m->alpha);
    free(m->gn_loss);
    free(m->gn_active);
    mimo_balance_free(&m->bal);
    free(m->head_grads);
    free(m->step);
    free(m->head_loss);
    free(m->micro);
    free(m->plan_rows);
    free(m->pre_rows);
    free(m->view_in);
    free(m->view_tgt);
    free(m->view_w);
    free(m->arr);
    free(m->rows);
    free(m->perm);
    free(m->params);
    free(m->grads);
    mimo_optim_free(&m->opt);
    mimo_sparse_free(&m->sparse);
    mimo_graph_free(&m->g);
    free(m);
    *mp = NULL;
}

mimo_graph *mimo_model_graph(mimo_model *m) { return m->g; }
int mimo_model_backward_rows(const mimo_model *m) { return m->backward_rows; }
mimo_real *mimo_model_params(mimo_model *m)
{
    return m->x.params ? m->x.params : m->params;
}
mimo_real *mimo_model_grads(mimo_model *m)
{
    return m->x.grads ? m->x.grads : m->grads;
}
mimo_optim *mimo_model_optim(mimo_model *m) { return m->opt; }
size_t mimo_model_param_count(const mimo_model *m) { return mimo_graph_param_count(m->g); }
size_t mimo_model_trained_count(const mimo_model *m) { return mimo_graph_trained_count(m->g); }
void mimo_model_set_lr(mimo_model *m, double lr) { m->lr = lr; }
double mimo_model_lr(const mimo_model *m) { return m->lr; }

void mimo_model_set_exchange(mimo_model *m, int rank, int size,
                             const mimo_exchange *x)
{
    m->rank = rank, m->size = size;
    m->x = x ? *x : m->sparse ? mimo_exchange_local_rows(m->sparse) : mimo_exchange_local();
    mimo_graph_set_reduce(m->g, m->x.ops->reduce, m->x.state, m->x.writes_state);
}

mimo_exchange *mimo_model_exchange(mimo_model *m) { return &m->x; }

void mimo_model_dense_tables(mimo_model *m)
{
    int local = m->sparse && m->x.state == m->sparse;
    mimo_sparse_free(&m->sparse);
    if (local)
        mimo_model_set_exchange(m, m->rank, m->size, NULL);
}

int mimo_model_rank(const mimo_model *m) { return m->rank; }
int mimo_model_size(const mimo_model *m) { return m->size; }

static void phase(const mimo_model *m, mimo_phase p, int end)
{
    mimo_exchange_phase(&m->x, p, end);
}

/* ---- in-memory arrays as a source ------------------------------------ */

static const mimo_array *find_array(const mimo_dataset *d, const char *name)
{
    for (int i = 0; i < d->n_arrays; i++)
        if (strcmp(d->arrays[i].name, name) == 0)
            return &d->arrays[i];
    return NULL;
}

static int bind_one(const mimo_dataset *d, const char *name, const char *what,
                    const char *owner, int cols, const mimo_array **dst,
                    size_t *rows)
{
    const mimo_array *a = find_array(d, name);
    if (!a)
        return mimo_error(MIMO_EINVAL, "no data '%s' for %s '%s'", name, what,
                          owner);
    if (a->cols != cols)
        return mimo_error(MIMO_ESHAPE, "data '%s' has %d columns, %s '%s' "
                          "needs %d", name, a->cols, what, owner, cols);
    if (*rows != (size_t)-1 && a->rows != *rows)
        return mimo_error(MIMO_ESHAPE, "data '%s' has %zu rows, others have "
                          "%zu", name, a->rows, *rows);
    *rows = a->rows;
    *dst = a;
    return 0;
}

/* Gathers rows[0..b) of the bound arrays into in/tgt. */
static int arrays_read(void *ctx, const uint64_t *rows, int b,
                       mimo_real *const *in, mimo_real *const *tgt)
{
    mimo_model *m = ctx;
    int n_sets = m->n_in + (tgt ? 2 * m->n_heads : 0);
    if (tgt && !m->arr_targets)
        return mimo_error(MIMO_EINVAL, "the data has no targets bound");
    for (int i = 0; i < n_sets; i++) {
        const mimo_array *a = m->arr[i];
        mimo_real *dst = i < m->n_in ? in[i] : tgt[i - m->n_in];
        if (!a || !dst) /* a head without sample weights */
            continue;
        mimo_gather_rows(dst, a->data, rows, b, 0, (size_t)a->cols);
    }
    return 0;
}

int mimo_arrays_source(mimo_model *m, const mimo_dataset *d, int targets,
                       mimo_source *out)
{
    int rc;
    size_t rows = (size_t)-1;
    for (int i = 0; i < m->n_in; i++) {
        const char *nm = mimo_graph_input_name(m->g, i);
        if ((rc = bind_one(d, nm, "input", nm, mimo_graph_input_width(m->g, i),
                           &m->arr[i], &rows)))
            return rc;
    }
    for (int h = 0; targets && h < m->n_heads; h++) {
        const mimo_output_spec *o = mimo_graph_head_spec(m->g, h);
        if ((rc = bind_one(d, o->target ? o->target : o->name, "head", o->name,
                           mimo_graph_head_target_width(m->g, h),
                           &m->arr[m->n_in + h], &rows)) ||
            (o->sample_weight &&
             (rc = bind_one(d, o->sample_weight, "the sample weights of head",
                            o->name, 1, &m->arr[m->n_in + m->n_heads + h], &rows))))
            return rc;
    }
    if (rows == (size_t)-1 || rows == 0)
        return mimo_error(MIMO_EINVAL, "the data has no rows");
    m->arr_targets = targets;
    *out = (mimo_source){rows, m, arrays_read, NULL};
    return 0;
}

/* ---- the epoch order ------------------------------------------------------ */

long mimo_model_steps_per_epoch(const mimo_model *m, size_t n)
{
    size_t B = (size_t)m->spec->train.batch_size;
    return (long)((n + B - 1) / B);
}

const uint64_t *mimo_model_order(mimo_model *m, size_t n, long epoch)
{
    if (m->perm_len < n) {
        uint64_t *p = realloc(m->perm, sizeof *p * (n ? n : 1));
        if (!p) {
            mimo_error(MIMO_ENOMEM, "out of memory for a permutation of %zu rows", n);
            return NULL;
        }
        m->perm = p;
        m->perm_len = n;
    }
    if (!m->spec->train.shuffle) {
        for (size_t i = 0; i < n; i++)
            m->perm[i] = i;
        return m->perm;
    }
    mimo_rng r;
    mimo_rng_seed(&r, m->spec->train.seed ^
                          ((uint64_t)epoch + 1) * 0xd1342543de82ef95ULL);
    mimo_rng_permutation(&r, m->perm, n);
    return m->perm;
}

/* ---- the parts of a training step -------------------------------------------- */

void mimo_model_slice(const mimo_model *m, size_t gb, size_t *lo, size_t *hi)
{
    *lo = gb * (size_t)m->rank / (size_t)m->size;
    *hi = gb * (size_t)(m->rank + 1) / (size_t)m->size;
}

int mimo_model_accumulate(const mimo_model *m) { return m->acc; }

/* Micro-batch j of a global batch of gb rows is its rows
 * [j gb / k, (j + 1) gb / k) — the same rows on any number of ranks, so
 * that batch statistics are too — and this rank takes its slice of each. */
int mimo_model_plan(mimo_model *m, const uint64_t *rows, size_t gb, int next,
                    const uint64_t **out)
{
    size_t lo, hi, k = (size_t)m->acc;
    if (k == 1) { /* one micro-batch: this rank's rows are contiguous */
        mimo_model_slice(m, gb, &lo, &hi);
        *out = rows + lo;
        if (!next)
            m->micro[0] = 0, m->micro[1] = (int)(hi - lo);
        return (int)(hi - lo);
    }
    uint64_t *buf = next ? m->pre_rows : m->plan_rows;
    int n = 0;
    for (size_t j = 0; j < k; j++) {
        size_t a = j * gb / k, e = (j + 1) * gb / k;
        mimo_model_slice(m, e - a, &lo, &hi);
        if (!next)
            m->micro[j] = n;
        memcpy(buf + n, rows + a + lo, sizeof *buf * (hi - lo));
        n += (int)(hi - lo);
    }
    if (!next)
        m->micro[k] = n;
    *out = buf;
    return n;
}

int mimo_model_micro_rows(const mimo_model *m, int j, int *off)
{
    *off = m->micro[j];
    return m->micro[j + 1] - m->micro[j];
}

void mimo_model_micro(mimo_model *m, int off, int last)
{
    size_t o = (size_t)off;
    for (int i = 0; i < m->n_in; i++)
        m->view_in[i] = m->batch_in[i] + o * (size_t)mimo_graph_input_width(m->g, i);
    for (int h = 0; h < m->n_heads; h++) {
        m->view_tgt[h] = m->batch_tgt[h] +
                         o * (size_t)mimo_graph_head_target_width(m->g, h);
        mimo_real *sw = m->batch_tgt[m->n_heads + h];
        m->view_tgt[m->n_heads + h] = sw ? sw + o : NULL;
        m->view_w[h] = m->row_w[h] ? m->row_w[h] + o : NULL;
    }
    m->step_rows = m->read_rows ? m->read_rows + o : NULL;
    m->view_last = last;
}

/* The last loss's sums and the rows' metrics into st. */
static int add_stats(mimo_model *m, int b, mimo_stats *st)
{
    int rc = mimo_stats_bind(st, m->g);
    for (int h = 0; h < m->n_heads && !rc; h++)
        rc = mimo_metrics_add(st->metrics, h, &m->step[h], m->view_tgt[h],
                              m->view_w[h], b);
    if (!rc)
        mimo_metrics_add_means(st->metrics, b);
    st->count += b;
    return rc;
}

void mimo_model_begin_step(mimo_model *m, long epoch)
{
    if (m->bal)
        mimo_balance_begin(m->bal);
    if (m->gradnorm)
        memset(m->gn_loss, 0, sizeof *m->gn_loss * (size_t)m->n_heads);
    m->epoch = epoch;
    m->step_rows = m->read_rows = NULL;
    m->backward_rows = 0;
    mimo_model_micro(m, 0, 1);
}

int mimo_model_read(mimo_model *m, const mimo_source *src, const uint64_t *rows,
                    int b, int targets)
{
    phase(m, MIMO_PHASE_DATA, 0);
    int rc = b > 0 ? src->read(src->ctx, rows, b, m->batch_in,
                               targets ? m->batch_tgt : NULL) : 0;
    phase(m, MIMO_PHASE_DATA, 1);
    m->step_rows = m->read_rows = rows;
    return rc;
}

void mimo_model_forward(mimo_model *m, int b)
{
    phase(m, MIMO_PHASE_FORWARD, 0);
    mimo_graph_set_training(m->g, m->step_rows, m->epoch);
    mimo_graph_forward(m->g, mimo_model_params(m),
                       (const mimo_real *const *)m->view_in, b);
}

/* The heads that weigh rows sum their weights over the ranks, with a
 * flag for a rank that met bad targets, so that none waits alone. */
int mimo_model_weigh(mimo_model *m, int b, size_t gb)
{
    int rc = mimo_graph_weigh(m->g, (const mimo_real *const *)m->batch_tgt,
                              (const mimo_real *const *)(m->batch_tgt + m->n_heads),
                              b, m->row_w, m->denom);
    int weighted = 0;
    for (int h = 0; h < m->n_heads; h++) {
        weighted |= mimo_graph_head_weighted(m->g, h);
        if (!mimo_graph_head_weighted(m->g, h) || rc)
            m->denom[h] = mimo_graph_head_weighted(m->g, h) ? 0 : (double)gb;
    }
    m->denom[m->n_heads] = rc != 0;
    if (weighted && m->x.ops->reduce) {
        int rr = m->x.ops->reduce(m->x.state, m->denom, m->n_heads + 1);
        if (!rc && rr)
            return rr;
        if (!rc && m->denom[m->n_heads] > 0)
            return mimo_error(MIMO_EPEER, "another rank met bad targets");
        for (int h = 0; h < m->n_heads; h++) /* the sum of gb's, not gb */
            if (!mimo_graph_head_weighted(m->g, h))
                m->denom[h] = (double)gb;
    }
    if (rc)
        return rc;
    /* the +1 of each s_h (added once, by rank 0) where the head has labels */
    mimo_real *grads = mimo_model_grads(m);
    for (int h = 0; h < mimo_graph_log_vars(m->g) && m->rank == 0; h++)
        grads[h] += m->denom[h] > 0;
    return 0;
}

int mimo_model_loss(mimo_model *m, int b, mimo_stats *st)
{
    int lv = mimo_graph_log_vars(m->g), rc;
    for (int h = 0; h < m->n_heads; h++)
        m->scale[h] = m->denom[h] > 0 ? 1.0 / m->denom[h] * mimo_model_head_weight(m, h)
                                      : 0;
    memset(m->step, 0, sizeof *m->step * (size_t)m->n_heads);
    rc = mimo_graph_loss_weighted(m->g, (const mimo_real *const *)m->view_tgt,
                                  (const mimo_real *const *)m->view_w, b, m->scale,
                                  m->step);
    /* d/ds_h of exp(-s_h) loss_h: -exp(-s_h) x this rank's part of loss_h */
    mimo_real *grads = mimo_model_grads(m);
    for (int h = 0; h < lv && !rc; h++)
        if (m->denom[h] > 0)
            grads[h] -= (mimo_real)(mimo_model_head_weight(m, h) * m->step[h].loss /
                                    m->denom[h]);
    for (int h = 0; h < m->n_heads && m->gradnorm && !rc; h++)
        if (m->denom[h] > 0) /* this rank's part of the head's mean loss */
            m->gn_loss[h] += m->step[h].loss / m->denom[h];
    if (!rc && st)
        rc = add_stats(m, b, st);
    phase(m, MIMO_PHASE_FORWARD, 1);
    return rc;
}

const mimo_head_stats *mimo_model_step_stats(const mimo_model *m) { return m->step; }

/* MGDA-UB: the Gram matrix of the heads' gradients at the shared
 * representation summed over the ranks, the min-norm weights, and the
 * backward of sum_h alpha_h (weight_h loss_h): the loss seeded again. */
static int mgda_step(mimo_model *m)
{
    int T = m->n_heads, rc = 0, b = m->micro[1] - m->micro[0];
    const double *G = mimo_graph_diag_gram(m->g);
    for (int x = 0; x < T; x++)
        for (int y = 0; y < T; y++)
            m->gram[x * T + y] = x <= y ? G[x * T + y] : G[y * T + x];
    if (m->x.ops->reduce && (rc = m->x.ops->reduce(m->x.state, m->gram, T * T)))
        return rc;
    mimo_balance_min_norm(m->gram, T, m->alpha);
    if (b == 0 && !mimo_graph_collective(m->g))
        return 0;
    for (int h = 0; h < T; h++)
        m->scale1[h] = m->scale[h] * m->alpha[h];
    mimo_model_micro(m, 0, 1);
    phase(m, MIMO_PHASE_BACKWARD, 0);
    if (!(rc = mimo_graph_loss_weighted(m->g, (const mimo_real *const *)m->view_tgt,
                                        (const mimo_real *const *)m->view_w, b,
                                        m->scale1, NULL))) {
        mimo_graph_diag_pause(m->g, 1);
        mimo_graph_backward_hooked(m->g, mimo_model_params(m), mimo_model_grads(m), b,
                                   m->x.ops->layer_done, m->x.state);
        mimo_graph_diag_pause(m->g, 0);
    }
    phase(m, MIMO_PHASE_BACKWARD, 1);
    return rc ? rc : mimo_graph_status(m->g);
}

/* GradNorm: the heads' squared gradient norms at the shared
 * representation (the diagnostics' Gram diagonal) and their losses, summed
 * over the ranks in one reduce; the losses of the first step a head has
 * labels kept as its l0 (in the parameters' untrained tail, so that they
 * are checkpointed); the weights' gradient written on rank 0 only, so
 * that the exchange's sum over the ranks is it. The optimizer steps the
 * weights with the network and rescales them to sum to T
 * (mimo_optim_set_renorm). */
static int gradnorm_step(mimo_model *m)
{
    int T = m->n_heads, rc = 0;
    size_t l0_off;
    const double *G = mimo_graph_diag_gram(m->g);
    double *sq = m->gram, *loss = m->gram + T;
    for (int h = 0; h < T; h++)
        sq[h] = G[h * T + h], loss[h] = m->gn_loss[h];
    if (m->x.ops->reduce && (rc = m->x.ops->reduce(m->x.state, m->gram, 2 * T)))
        return rc;
    mimo_graph_gradnorm(m->g, &l0_off);
    mimo_real *params = mimo_model_params(m), *l0 = params + l0_off;
    double *l0d = m->gn_loss + T; /* l0 in double, for the ratios */
    for (int h = 0; h < T; h++) {
        if (m->denom[h] > 0 && l0[h] == 0 && m->x.writes_state)
            l0[h] = (mimo_real)loss[h]; /* the first: every writer the same */
        l0d[h] = l0[h] != 0 ? (double)l0[h] : (double)(mimo_real)loss[h];
        m->gn_active[h] = m->denom[h] > 0 && l0d[h] > 0;
    }
    double *grad = m->gn_loss + 2 * T;
    mimo_balance_gradnorm(T, sq, loss, l0d, m->gn_active, params,
                          m->spec->train.gradnorm_alpha, grad);
    mimo_real *grads = mimo_model_grads(m);
    for (int h = 0; h < T && m->rank == 0; h++)
        grads[h] += (mimo_real)grad[h];
    return 0;
}

int mimo_model_balance(mimo_model *m, long epoch, long step)
{
    if (m->gradnorm)
        return gradnorm_step(m);
    if (m->mgda)
        return mgda_step(m);
    if (!m->bal)
        return 0;
    return mimo_balance_pcgrad(m->bal, mimo_model_grads(m), m->rank,
                               m->spec->train.seed, epoch, step, m->x.ops->reduce,
                               m->x.state);
}

int mimo_model_diag_add(mimo_model *m, mimo_stats *st)
{
    if (!mimo_graph_diag_on(m->g))
        return 0;
    int logs = st && (m->spec->train.grad_diagnostics || m->mgda);
    int rc = logs ? mimo_stats_bind(st, m->g) : 0;
    if (!rc && logs && m->spec->train.grad_diagnostics) /* the step once over ranks */
        mimo_metrics_add_gram(st->metrics, mimo_graph_diag_gram(m->g), m->rank == 0);
    if (!rc && logs && m->mgda) /* the weights: the same on every rank */
        mimo_metrics_add_balance(st->metrics, m->alpha, m->rank == 0);
    mimo_graph_diag_clear(m->g);
    return rc;
}

/* task_balancing: one backward per head, seeded by that head alone, into
 * its own buffer (the loss recomputed to seed it: cheap next to a
 * backward). */
static void backward_per_head(mimo_model *m, int b)
{
    mimo_graph_diag_group(m->g, 1, b);
    for (int h = 0; h < m->n_heads; h++) {
        memset(m->scale1, 0, sizeof *m->scale1 * (size_t)m->n_heads);
        m->scale1[h] = m->scale[h];
        if (mimo_graph_loss_weighted(m->g, (const mimo_real *const *)m->view_tgt,
                                     (const mimo_real *const *)m->view_w, b,
                                     m->scale1, NULL))
            continue; /* already met by mimo_model_loss */
        mimo_graph_backward(m->g, mimo_model_params(m), mimo_balance_grads(m->bal, h), b);
    }
    mimo_graph_diag_group(m->g, 0, b);
}

void mimo_model_backward(mimo_model *m, int b)
{
    phase(m, MIMO_PHASE_BACKWARD, 0);
    m->backward_rows = b;
    if (m->mgda) { /* the first pass: down to where the heads part */
        memset(m->scratch, 0, sizeof *m->scratch * mimo_graph_trained_count(m->g));
        mimo_graph_backward_after(m->g, mimo_model_params(m), m->scratch, b,
                                  mimo_graph_diag_first(m->g));
        phase(m, MIMO_PHASE_BACKWARD, 1);
        return;
    }
    if (m->head_grads) { /* pcgrad: every head seeded by the loss, apart */
        mimo_graph_backward_stacked(m->g, mimo_model_params(m), m->head_grads, b);
        phase(m, MIMO_PHASE_BACKWARD, 1);
        return;
    }
    if (m->bal) {
        backward_per_head(m, b);
        phase(m, MIMO_PHASE_BACKWARD, 1);
        return;
    }
    /* only the last micro-batch's backward makes layers' gradients final;
     * under gradnorm not even that: its weights' gradient, the first
     * values, comes after the backward */
    mimo_graph_backward_hooked(m->g, mimo_model_params(m), mimo_model_grads(m),
                               b, m->view_last && !m->gradnorm ? m->x.ops->layer_done
                                                               : NULL,
                               m->x.state);
    phase(m, MIMO_PHASE_BACKWARD, 1);
}

/* ---- evaluation and prediction ---------------------------------------- */

/* Runs forward over this rank's share of src's rows in batches and calls
 * visit(m, first row, b, u) after each. */
static int sweep(mimo_model *m, const mimo_source *src, int targets,
                 int (*visit)(mimo_model *m, size_t lo, int b, void *u), void *u)
{
    size_t B = (size_t)mimo_graph_max_batch(m->g), lo_r, hi_r;
    mimo_model_slice(m, src->rows, &lo_r, &hi_r);
    mimo_graph_set_inference(m->g);
    m->read_rows = NULL;
    mimo_model_micro(m, 0, 1);
    for (size_t lo = lo_r; lo < hi_r; lo += B) {
        int b = (int)(hi_r - lo < B ? hi_r - lo : B), rc;
        for (int r = 0; r < b; r++)
            m->rows[r] = lo + (size_t)r;
        if ((rc = src->read(src->ctx, m->rows, b, m->batch_in,
                            targets ? m->batch_tgt : NULL)))
            return rc;
        mimo_graph_forward(m->g, mimo_model_params(m),
                           (const mimo_real *const *)m->batch_in, b);
        if ((rc = mimo_graph_status(m->g)) || (rc = visit(m, lo, b, u)))
            return rc;
    }
    return 0;
}

static int visit_eval(mimo_model *m, size_t lo, int b, void *u)
{
    (void)lo;
    int rc = mimo_graph_weigh(m->g, (const mimo_real *const *)m->batch_tgt,
                              (const mimo_real *const *)(m->batch_tgt + m->n_heads),
                              b, m->row_w, m->denom);
    memset(m->step, 0, sizeof *m->step * (size_t)m->n_heads);
    if (!rc)
        rc = mimo_graph_loss_weighted(m->g, (const mimo_real *const *)m->batch_tgt,
                                      (const mimo_real *const *)m->row_w, b, NULL,
                                      m->step);
    return rc ? rc : add_stats(m, b, u);
}

int mimo_model_evaluate(mimo_model *m, const mimo_source *src, mimo_stats *st)
{
    int rc = mimo_stats_bind(st, m->g);
    return rc ? rc : sweep(m, src, 1, visit_eval, st);
}

/* outs[h] rows are global row indices: this rank writes its own share. */
static int visit_predict(mimo_model *m, size_t lo, int b, void *u)
{
    mimo_real *const *outs = u;
    for (int h = 0; h < m->n_heads; h++) {
        size_t w = (size_t)mimo_graph_head_units(m->g, h);
        memcpy(outs[h] + lo * w, mimo_graph_output(m->g, h),
               sizeof(mimo_real) * w * (size_t)b);
    }
    return 0;
}

int mimo_model_predict(mimo_model *m, const mimo_source *src,
                       mimo_real *const *outs)
{
    return sweep(m, src, 0, visit_predict, (void *)outs);
}
