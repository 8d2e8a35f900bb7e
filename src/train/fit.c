/* fit.c — training on in-memory arrays (include/mimo/fit.h): epochs of
 * mimo_train_step over the model's epoch order, validation after each, a
 * Keras-style validation_split. The library's counterpart of `mimo
 * train`, without files, checkpoints or MPI. */
#include "core/model.h"
#include "mimo/fit.h"

#include <stdlib.h>

#include "mimo/error.h"
#include "train/fit_impl.h"
#include "train/schedule.h"

int mimo_model_train_epoch(mimo_model *m, const mimo_source *src, long epoch,
                           long first_step, mimo_stats *st)
{
    const mimo_spec *spec = mimo_graph_spec(mimo_model_graph(m));
    size_t n = src->rows, B = (size_t)spec->train.batch_size;
    long steps = mimo_model_steps_per_epoch(m, n);
    int rc = 0;
    const uint64_t *order = mimo_model_order(m, n, epoch);
    if (!order)
        return mimo_error(MIMO_ENOMEM, "out of memory for an epoch");
    for (long step = first_step; step < steps && !rc; step++) {
        size_t start = (size_t)step * B, gb = n - start < B ? n - start : B;
        /* the lr schedule's value for this step, as mimo train sets it */
        mimo_model_set_lr(m, mimo_schedule_lr(&spec->train.schedule, spec->train.opt.lr,
                                              epoch, spec->train.epochs, step, steps));
        rc = mimo_train_step(m, src, order + start, gb, epoch, step, st);
    }
    return rc;
}

int mimo_validation_rows(double split, size_t n, const char *where, size_t *n_val)
{
    size_t nv = split > 0 ? (size_t)((double)n * split) : 0;
    *n_val = nv;
    if (split > 0 && (nv == 0 || nv >= n))
        return mimo_error(MIMO_EINVAL, "%s%svalidation_split %g of %zu rows leaves "
                          "no %s rows", where ? where : "", where ? ": " : "", split,
                          n, nv == 0 ? "validation" : "training");
    return 0;
}

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
    const mimo_spec *spec = mimo_graph_spec(mimo_model_graph(m));
    int nh = mimo_graph_n_heads(mimo_model_graph(m));
    mimo_stats st = {0}, vst = {0};
    int rc = mimo_stats_init(&st, nh);
    if (rc || (rc = mimo_stats_init(&vst, nh)) ||
        (rc = mimo_stats_bind(&st, mimo_model_graph(m))) ||
        (rc = mimo_stats_bind(&vst, mimo_model_graph(m)))) {
        mimo_stats_free(&vst);
        mimo_stats_free(&st);
        return rc;
    }
    mimo_source ts, vs;
    for (long e = 0; e < spec->train.epochs && !rc; e++) {
        mimo_stats_reset(&st);
        mimo_stats_reset(&vst);
        if ((rc = mimo_arrays_source(m, train, 1, &ts)) ||
            (rc = mimo_model_train_epoch(m, &ts, e, 0, &st)))
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
    double split = mimo_graph_spec(mimo_model_graph(m))->train.validation_split;
    if (val || split <= 0)
        return fit_loop(m, train, val, on_epoch, user);
    mimo_source src;
    int rc = mimo_arrays_source(m, train, 1, &src);
    if (rc)
        return rc;
    size_t n_val;
    if ((rc = mimo_validation_rows(split, src.rows, NULL, &n_val)))
        return rc;
    mimo_array *tr = NULL, *va = NULL;
    if (!(rc = split_views(train, n_val, &tr, &va))) {
        mimo_dataset dt = {tr, train->n_arrays}, dv = {va, train->n_arrays};
        rc = fit_loop(m, &dt, &dv, on_epoch, user);
    }
    free(tr);
    free(va);
    return rc;
}
