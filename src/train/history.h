/* history.h — a run's history: one row per epoch of named columns
 * (epoch, loss, <head>_loss, <head>_<metric>, the layers' logged means
 * <layer>_mean_<j>, the val_ versions, lr, seconds, samples_per_s), kept in memory for the callbacks' monitors and
 * written to history.csv by rank 0. */
#ifndef MIMO_TRAIN_HISTORY_H
#define MIMO_TRAIN_HISTORY_H

#include "core/model.h"

typedef struct {
    int n_cols;
    char **names;
    double *values;  /* the last epoch's row */
    int have_val;
    const mimo_graph *g;
} mimo_history;

/* The columns for graph g's heads and metrics (with val_ ones). */
int mimo_history_init(mimo_history *h, const mimo_graph *g, int have_val);
void mimo_history_free(mimo_history *h);

/* Index of a column, or -1; a column's value in the last row (NaN if none). */
int mimo_history_col(const mimo_history *h, const char *name);
double mimo_history_value(const mimo_history *h, const char *name);

/* The monitor of a callback: `given`, or val_loss (loss without
 * validation); an error naming config file and callback (`what`) when it
 * is not a logged quantity. */
int mimo_history_monitor(const mimo_history *h, const char *given,
                         const char *what, const char *file, char *out,
                         size_t len);

/* Fills the row of the finished epoch. */
void mimo_history_fill(mimo_history *h, long epoch, const mimo_stats *train,
                       const mimo_stats *val, double lr, double secs,
                       double samples_per_s);

/* Validation and eval (mimo_stats after mimo_stats_finish, summed over
 * the ranks, so every rank decides alike): a head whose loss over rows of
 * positive weight is not finite — its outputs overflowed or are NaN on
 * this data — is an error naming `what` ("validation", "evaluation"),
 * the data and the head (the same on every rank: the callers agree on it
 * so that one rank reports it). The rule, not
 * NaN metrics: a NaN head loss would drop out of the total loss (heads
 * without labels do) and read as an improvement to best.h5 and the
 * callbacks; and the training loss has the same rule (step.c). */
int mimo_stats_check_finite(const mimo_stats *st, const mimo_graph *g,
                            const char *what, const char *data);

/* history.csv: keeps the header and the rows of epochs 1..keep (a resumed
 * run rewrites what it will log again), or starts the file; then appends
 * the filled row. */
int mimo_history_prepare(const mimo_history *h, const char *path, long keep);
int mimo_history_append(const mimo_history *h, const char *path);

#endif
