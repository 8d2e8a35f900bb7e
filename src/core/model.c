/* model.c — training, evaluation and prediction from a mimo_source.
 * Owns the flat parameter and gradient buffers, the optimizer and the
 * batch staging buffers; the graph does the math. MPI enters only through
 * the partition (rank, size) and the step hooks (allreduce, tracing). */
#include "mimo/model.h"

#include <stdlib.h>
#include <string.h>
#include <tgmath.h>

#include "mimo/error.h"
#include "mimo/rng.h"
#include "core/graph_impl.h"

struct mimo_model {
    const mimo_spec *spec;
    mimo_graph *g;
    mimo_optim *opt;
    mimo_real *params, *grads;
    double lr;
    int rank, size;
    mimo_step_hooks hooks;
    int n_in, n_heads;
    const mimo_array **arr;                /* bound arrays: inputs, targets */
    int arr_targets;
    mimo_real **batch_in, **batch_tgt;     /* (max_batch, cols) staging */
    uint64_t *rows;                        /* (max_batch) row indices */
    mimo_head_stats *step;                 /* one step's sums */
    uint64_t *perm;
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

void mimo_stats_reset(mimo_stats *st)
{
    memset(st->head, 0, sizeof *st->head * (size_t)st->n_heads);
    st->loss = 0;
    st->count = 0;
}

void mimo_stats_free(mimo_stats *st)
{
    free(st->head);
    memset(st, 0, sizeof *st);
}

void mimo_stats_finish(const mimo_model *m, mimo_stats *st)
{
    double c = st->count > 0 ? (double)st->count : 1;
    st->loss = 0;
    for (int h = 0; h < st->n_heads; h++) {
        mimo_head_stats *s = &st->head[h];
        s->loss /= c, s->acc /= c, s->mse /= c, s->mae /= c;
        st->loss += m->spec->outputs[h].weight * s->loss;
    }
}

/* ---- creation ------------------------------------------------------------ */

static int alloc_staging(mimo_model *m)
{
    int B = mimo_graph_max_batch(m->g);
    m->arr = calloc((size_t)(m->n_in + m->n_heads), sizeof *m->arr);
    m->rows = malloc(sizeof *m->rows * (size_t)B);
    m->batch_in = calloc((size_t)m->n_in, sizeof *m->batch_in);
    m->batch_tgt = calloc((size_t)m->n_heads, sizeof *m->batch_tgt);
    m->step = calloc((size_t)m->n_heads, sizeof *m->step);
    if (!m->arr || !m->rows || !m->batch_in || !m->batch_tgt || !m->step)
        return -1;
    for (int i = 0; i < m->n_in; i++)
        if (!(m->batch_in[i] = malloc(sizeof(mimo_real) * (size_t)B *
                                      (size_t)mimo_graph_input_width(m->g, i))))
            return -1;
    for (int h = 0; h < m->n_heads; h++)
        if (!(m->batch_tgt[h] = malloc(sizeof(mimo_real) * (size_t)B *
                                       (size_t)mimo_graph_head_target_width(m->g, h))))
            return -1;
    return 0;
}

int mimo_model_create(const mimo_spec *spec, mimo_model **out)
{
    *out = NULL;
    if (spec->train.batch_size < 1 || spec->train.batch_size > (1L << 30))
        return mimo_error(MIMO_EINVAL, "%s: batch_size %ld is out of range",
                          spec->file ? spec->file : "<config>",
                          spec->train.batch_size);
    mimo_model *m = calloc(1, sizeof *m);
    if (!m)
        return mimo_error(MIMO_ENOMEM, "out of memory creating the model");
    m->spec = spec;
    m->lr = spec->train.opt.lr;
    m->size = 1;
    int rc = mimo_graph_compile(spec, (int)spec->train.batch_size, 0, &m->g);
    if (rc) {
        mimo_model_free(&m);
        return rc;
    }
    size_t n = mimo_graph_param_count(m->g);
    m->n_in = mimo_graph_n_inputs(m->g);
    m->n_heads = mimo_graph_n_heads(m->g);
    m->params = calloc(n ? n : 1, sizeof(mimo_real));
    m->grads = calloc(n ? n : 1, sizeof(mimo_real));
    if (!m->params || !m->grads || alloc_staging(m)) {
        mimo_model_free(&m);
        return mimo_error(MIMO_ENOMEM, "out of memory creating the model");
    }
    if ((rc = mimo_optim_create(&spec->train.opt, n, &m->opt))) {
        mimo_model_free(&m);
        return rc;
    }
    mimo_graph_init_params(m->g, m->params, spec->train.seed);
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
    for (int h = 0; m->batch_tgt && h < m->n_heads; h++)
        free(m->batch_tgt[h]);
    free(m->batch_in);
    free(m->batch_tgt);
    free(m->arr);
    free(m->rows);
    free(m->step);
    free(m->perm);
    free(m->params);
    free(m->grads);
    mimo_optim_free(&m->opt);
    mimo_graph_free(&m->g);
    free(m);
    *mp = NULL;
}

mimo_graph *mimo_model_graph(mimo_model *m) { return m->g; }
mimo_real *mimo_model_params(mimo_model *m)
{
    return m->hooks.params ? m->hooks.params : m->params;
}
mimo_real *mimo_model_grads(mimo_model *m)
{
    return m->hooks.grads ? m->hooks.grads : m->grads;
}
mimo_optim *mimo_model_optim(mimo_model *m) { return m->opt; }
size_t mimo_model_param_count(const mimo_model *m) { return mimo_graph_param_count(m->g); }
void mimo_model_set_lr(mimo_model *m, double lr) { m->lr = lr; }
double mimo_model_lr(const mimo_model *m) { return m->lr; }

void mimo_model_set_partition(mimo_model *m, int rank, int size,
                              const mimo_step_hooks *hooks)
{
    m->rank = rank, m->size = size;
    memset(&m->hooks, 0, sizeof m->hooks);
    if (hooks)
        m->hooks = *hooks;
}

int mimo_model_rank(const mimo_model *m) { return m->rank; }
int mimo_model_size(const mimo_model *m) { return m->size; }

static void phase(const mimo_model *m, const char *name, int end)
{
    if (m->hooks.phase)
        m->hooks.phase(m->hooks.user, name, end);
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
    int n_sets = m->n_in + (tgt ? m->n_heads : 0);
    if (tgt && !m->arr_targets)
        return mimo_error(MIMO_EINVAL, "the data has no targets bound");
    for (int i = 0; i < n_sets; i++) {
        const mimo_array *a = m->arr[i];
        mimo_real *dst = i < m->n_in ? in[i] : tgt[i - m->n_in];
        size_t w = (size_t)a->cols;
        for (int r = 0; r < b; r++)
            memcpy(dst + (size_t)r * w, a->data + (size_t)rows[r] * w,
                   sizeof(mimo_real) * w);
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
                           &m->arr[m->n_in + h], &rows)))
            return rc;
    }
    if (rows == (size_t)-1 || rows == 0)
        return mimo_error(MIMO_EINVAL, "the data has no rows");
    m->arr_targets = targets;
    *out = (mimo_source){rows, m, arrays_read, NULL};
    return 0;
}

/* ---- training ------------------------------------------------------------ */

static int ensure_perm(mimo_model *m, size_t n)
{
    if (m->perm_len >= n)
        return 0;
    uint64_t *p = realloc(m->perm, sizeof *p * n);
    if (!p)
        return mimo_error(MIMO_ENOMEM, "out of memory for a permutation of "
                          "%zu rows", n);
    m->perm = p;
    m->perm_len = n;
    return 0;
}

/* The sample order of an epoch: the same on every rank. */
static void epoch_order(mimo_model *m, size_t n, long epoch)
{
    if (!m->spec->train.shuffle) {
        for (size_t i = 0; i < n; i++)
            m->perm[i] = i;
        return;
    }
    mimo_rng r;
    mimo_rng_seed(&r, m->spec->train.seed ^
                          ((uint64_t)epoch + 1) * 0xd1342543de82ef95ULL);
    mimo_rng_permutation(&r, m->perm, n);
}

static int check_step(const mimo_model *m, long epoch, long step)
{
    for (int h = 0; h < m->n_heads; h++)
        if (!isfinite(m->step[h].loss))
            return mimo_error(MIMO_ENUM, "loss of head '%s' is not finite at "
                              "epoch %ld, step %ld (diverged: lower the "
                              "learning rate or clip gradients)",
                              mimo_graph_head_spec(m->g, h)->name, epoch + 1,
                              step + 1);
    return 0;
}

/* This rank's slice [lo, hi) of the global batch [start, start + gb). */
static void rank_slice(const mimo_model *m, size_t start, size_t gb, size_t *lo,
                       size_t *hi)
{
    *lo = start + gb * (size_t)m->rank / (size_t)m->size;
    *hi = start + gb * (size_t)(m->rank + 1) / (size_t)m->size;
}

/* One process training with plain SGD: backward applies the step itself
 * (mimo_graph_backward_sgd), with no gradient buffer to zero, fill and
 * read back. */
static int sgd_in_backward(const mimo_model *m)
{
    return m->size == 1 && !m->hooks.grads && !m->hooks.params &&
           !m->hooks.finish && !m->hooks.apply && mimo_optim_is_plain_sgd(m->opt);
}

/* Forward, loss and backward of this rank's b rows at perm[lo, lo + b). */
static int forward_backward(mimo_model *m, const mimo_source *src, size_t lo,
                            int b, size_t gb, long epoch, long step,
                            mimo_real *grads)
{
    phase(m, "data", 0);
    int rc = src->read(src->ctx, m->perm + lo, b, m->batch_in, m->batch_tgt);
    phase(m, "data", 1);
    if (rc)
        return rc;
    phase(m, "forward", 0);
    mimo_graph_forward(m->g, mimo_model_params(m),
                       (const mimo_real *const *)m->batch_in, b);
    rc = mimo_graph_loss(m->g, (const mimo_real *const *)m->batch_tgt, b,
                         1.0 / (double)gb, m->step);
    phase(m, "forward", 1);
    if (rc || (rc = check_step(m, epoch, step)))
        return rc;
    phase(m, "backward", 0);
    if (sgd_in_backward(m))
        mimo_graph_backward_sgd(m->g, mimo_model_params(m), m->lr, b,
                                m->hooks.layer_done, m->hooks.user);
    else
        mimo_graph_backward_hooked(m->g, mimo_model_params(m), grads, b,
                                   m->hooks.layer_done, m->hooks.user);
    phase(m, "backward", 1);
    return 0;
}

/* One step on global batch rows [start, start + gb) of the order. */
static int train_step(mimo_model *m, const mimo_source *src, size_t start,
                      size_t gb, long epoch, long step)
{
    size_t lo, hi;
    rank_slice(m, start, gb, &lo, &hi);
    int b = (int)(hi - lo), rc, in_place = sgd_in_backward(m);
    size_t n = mimo_graph_param_count(m->g);
    /* this rank's gradient; m->grads is then scratch for the optimizer */
    mimo_real *grads = m->hooks.grads ? m->hooks.grads : m->grads;
    const mimo_real *sum = grads;
    if (!in_place && !(m->hooks.grads && m->hooks.grads_zeroed))
        mimo_vec_zero(grads, n);
    memset(m->step, 0, sizeof *m->step * (size_t)m->n_heads);
    if (m->hooks.begin)
        m->hooks.begin(m->hooks.user, grads, n);
    if (b > 0 && (rc = forward_backward(m, src, lo, b, gb, epoch, step, grads)))
        return rc;
    if (in_place) { /* one process: no sum to wait for */
        mimo_optim_begin_step(m->opt); /* counts it */
        return 0;
    }
    if (m->hooks.apply) /* the runtime sums and updates (its slice) */
        return m->hooks.apply(m->hooks.user, m->opt, mimo_model_params(m), m->lr);
    if (m->hooks.finish && (rc = m->hooks.finish(m->hooks.user, grads, n, &sum)))
        return rc;
    phase(m, "optimizer", 0);
    mimo_optim_step(m->opt, mimo_model_params(m), sum, m->grads, m->lr);
    phase(m, "optimizer", 1);
    return 0;
}

static void add_stats(mimo_stats *st, const mimo_head_stats *s, int n_heads, int b)
{
    if (!st)
        return;
    for (int h = 0; h < n_heads; h++) {
        st->head[h].loss += s[h].loss, st->head[h].acc += s[h].acc;
        st->head[h].mse += s[h].mse, st->head[h].mae += s[h].mae;
    }
    st->count += b;
}

long mimo_model_steps_per_epoch(const mimo_model *m, size_t n)
{
    size_t B = (size_t)m->spec->train.batch_size;
    return (long)((n + B - 1) / B);
}

/* Starts reading the rows of the step that begins at `start`. */
static void prefetch_step(const mimo_model *m, const mimo_source *src,
                          size_t start, size_t n)
{
    size_t B = (size_t)m->spec->train.batch_size, lo, hi;
    if (!src->prefetch || start >= n)
        return;
    rank_slice(m, start, n - start < B ? n - start : B, &lo, &hi);
    if (hi > lo)
        src->prefetch(src->ctx, m->perm + lo, (int)(hi - lo));
}

int mimo_model_train_epoch(mimo_model *m, const mimo_source *src, long epoch,
                           long first_step, mimo_stats *st,
                           mimo_step_fn on_step, void *user)
{
    size_t n = src->rows, B = (size_t)m->spec->train.batch_size;
    long steps = mimo_model_steps_per_epoch(m, n);
    int rc;
    if ((rc = ensure_perm(m, n)))
        return rc;
    epoch_order(m, n, epoch);
    prefetch_step(m, src, (size_t)first_step * B, n);
    for (long step = first_step; step < steps; step++) {
        size_t start = (size_t)step * B, gb = n - start < B ? n - start : B, lo, hi;
        if ((rc = train_step(m, src, start, gb, epoch, step)))
            return rc;
        prefetch_step(m, src, start + B, n);
        rank_slice(m, start, gb, &lo, &hi);
        add_stats(st, m->step, m->n_heads, (int)(hi - lo));
        if (on_step && on_step(user, epoch, step, steps, m->step, (int)(hi - lo)))
            return 1;
    }
    return 0;
}

/* ---- evaluation and prediction ---------------------------------------- */

/* Runs forward over this rank's share of src's rows in batches and calls
 * visit(m, first row, b, u) after each. */
static int sweep(mimo_model *m, const mimo_source *src, int targets,
                 int (*visit)(mimo_model *m, size_t lo, int b, void *u), void *u)
{
    size_t B = (size_t)mimo_graph_max_batch(m->g), lo_r, hi_r;
    rank_slice(m, 0, src->rows, &lo_r, &hi_r);
    for (size_t lo = lo_r; lo < hi_r; lo += B) {
        int b = (int)(hi_r - lo < B ? hi_r - lo : B), rc;
        for (int r = 0; r < b; r++)
            m->rows[r] = lo + (size_t)r;
        if ((rc = src->read(src->ctx, m->rows, b, m->batch_in,
                            targets ? m->batch_tgt : NULL)))
            return rc;
        mimo_graph_forward(m->g, mimo_model_params(m),
                           (const mimo_real *const *)m->batch_in, b);
        if ((rc = visit(m, lo, b, u)))
            return rc;
    }
    return 0;
}

static int visit_eval(mimo_model *m, size_t lo, int b, void *u)
{
    (void)lo;
    mimo_stats *st = u;
    st->count += b;
    return mimo_graph_loss(m->g, (const mimo_real *const *)m->batch_tgt, b, 0,
                           st->head);
}

int mimo_model_evaluate(mimo_model *m, const mimo_source *src, mimo_stats *st)
{
    return sweep(m, src, 1, visit_eval, st);
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

/* ---- fit ------------------------------------------------------------------- */

/* Splits d into its first rows (train) and last n_val rows (val). */
static int split_views(const mimo_dataset *d, size_t n_val, mimo_array **tr,
                       mimo_array **va)
{
    *tr = malloc(sizeof **tr * (size_t)d->n_arrays);
    *va = malloc(sizeof **va * (size_t)d->n_arrays);
    if (!*tr || !*va)
        return mimo_error(MIMO_ENOMEM, "out of memory splitting the data");
    for (int i = 0; i < d->n_arrays; i++) {
        const mimo_array *a = &d->arrays[i];
        size_t keep = a->rows > n_val ? a->rows - n_val : 0;
        (*tr)[i] = (mimo_array){a->name, a->data, keep, a->cols};
        (*va)[i] = (mimo_array){a->name, a->data + keep * (size_t)a->cols,
                                a->rows - keep, a->cols};
    }
    return 0;
}

static int fit_loop(mimo_model *m, const mimo_dataset *train,
                    const mimo_dataset *val, mimo_epoch_fn on_epoch, void *user)
{
    mimo_stats st, vst;
    int rc = mimo_stats_init(&st, m->n_heads);
    if (rc || (rc = mimo_stats_init(&vst, m->n_heads))) {
        mimo_stats_free(&st);
        return rc;
    }
    mimo_source ts, vs;
    for (long e = 0; e < m->spec->train.epochs && !rc; e++) {
        mimo_stats_reset(&st);
        mimo_stats_reset(&vst);
        if ((rc = mimo_arrays_source(m, train, 1, &ts)) ||
            (rc = mimo_model_train_epoch(m, &ts, e, 0, &st, NULL, NULL)))
            break;
        mimo_stats_finish(m, &st);
        if (val && ((rc = mimo_arrays_source(m, val, 1, &vs)) ||
                    (rc = mimo_model_evaluate(m, &vs, &vst))))
            break;
        mimo_stats_finish(m, &vst);
        if (on_epoch && on_epoch(user, e, &st, val ? &vst : NULL))
            break;
    }
    mimo_stats_free(&st);
    mimo_stats_free(&vst);
    return rc;
}

int mimo_fit(mimo_model *m, const mimo_dataset *train, const mimo_dataset *val,
             mimo_epoch_fn on_epoch, void *user)
{
    double split = m->spec->train.validation_split;
    if (val || split <= 0)
        return fit_loop(m, train, val, on_epoch, user);
    mimo_source src;
    int rc = mimo_arrays_source(m, train, 1, &src);
    if (rc)
        return rc;
    size_t n = src.rows;
    size_t n_val = (size_t)((double)n * split);
    if (n_val == 0 || n_val >= n)
        return mimo_error(MIMO_EINVAL, "validation_split %g of %zu rows leaves "
                          "an empty training or validation set", split, n);
    mimo_array *tr = NULL, *va = NULL;
    if (!(rc = split_views(train, n_val, &tr, &va))) {
        mimo_dataset dt = {tr, train->n_arrays}, dv = {va, train->n_arrays};
        rc = fit_loop(m, &dt, &dv, on_epoch, user);
    }
    free(tr);
    free(va);
    return rc;
}
