/* metrics.h — what the heads' metrics add up over an epoch: a vector of
 * sums (loss, weight, labelled rows, hits, squared errors, per-class
 * counts, ...) that adds elementwise over batches and ranks, and for an
 * exact ROC AUC every labelled row's scores. The parts that combine
 * them over ranks (comm/) or keep them in a checkpoint (train/) use this;
 * users read the values from a finished mimo_stats. */
#ifndef MIMO_CORE_METRICS_H
#define MIMO_CORE_METRICS_H


#include <stddef.h>

#include "core/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mimo_metrics mimo_metrics;

/* Empty sums for the heads of g (which must outlive them). */
int mimo_metrics_create(const mimo_graph *g, mimo_metrics **out);
void mimo_metrics_free(mimo_metrics **m);
/* Back to empty (memory is kept). */
void mimo_metrics_reset(mimo_metrics *m);
/* dst = src (same graph). */
int mimo_metrics_copy(mimo_metrics *dst, const mimo_metrics *src);

/* Adds head h's batch: the loss sums of mimo_graph_loss_weighted in
 * batch, and the metrics of the graph's last forward against targets t
 * (b, target width) over the rows that w (b weights; NULL: all) labels. */
int mimo_metrics_add(mimo_metrics *m, int h, const mimo_head_stats *batch,
                              const mimo_real *t, const mimo_real *w, int b);

/* The sums: n values, added elementwise to combine two sets of batches. */
size_t mimo_metrics_n_sums(const mimo_metrics *m);
double *mimo_metrics_sums(mimo_metrics *m);

/* Head h's AUC scores: *n entries of (score, 1 for a positive or 0),
 * in the order the rows came (each row adds the same number). 0 entries
 * when the head has no auc metric. */
size_t mimo_metrics_scores(const mimo_metrics *m, int h,
                                    const mimo_real **score,
                                    const unsigned char **positive);
/* The sums' layout, to tell whether saved sums fit these metrics: per
 * head its metric bits, units, classes counted, AUC lists and r2 units.
 * Writes the values into out (may be NULL) and returns how many. */
size_t mimo_metrics_layout(const mimo_metrics *m, double *out);
/* Head h's AUC from the entries this process holds (NaN without both
 * classes); mimo_metrics_fix_auc sets the value the values report until
 * the entries change (the AUC over all ranks, computed on one). */
double mimo_metrics_auc(const mimo_metrics *m, int h);
void mimo_metrics_fix_auc(mimo_metrics *m, int h, double auc);
/* Whether head h keeps AUC scores (it asks for auc). */
int mimo_metrics_has_scores(const mimo_metrics *m, int h);
/* Makes room for n entries of head h, replacing its scores; fill them
 * through the pointers. */
int mimo_metrics_set_scores(mimo_metrics *m, int h, size_t n,
                                     mimo_real **score, unsigned char **positive);

/* Head h's values into st: loss (sum v x loss / sum v), each metric the
 * head asks for, weight and labelled (NaN for what has no labelled row). */
void mimo_metrics_values(const mimo_metrics *m, int h, mimo_head_stats *st);
/* The running mean loss of head h (NaN before any weight). */
double mimo_metrics_loss(const mimo_metrics *m, int h);

/* Per-head gradient diagnostics (with the graph's, mimo_graph_diag_on):
 * a step's Gram matrix of the heads' gradients (n_heads^2, upper
 * triangle) and its count of steps (1 on one rank, 0 on the others, so
 * that sums over ranks count steps once) add into the sums; grad_norm is
 * head h's root mean square over the steps of its gradient's norm over
 * the global batch, grad_cos the cosine of heads a < b over the epoch
 * (the sum of the steps' dot products over the root of the product of
 * the sums of their squared norms); NaN when there is nothing. */
void mimo_metrics_add_gram(mimo_metrics *m, const double *gram, double steps);
/* task_balancing: mgda_ub: the step's weights alpha (T), counted steps
 * times (1 on one rank, 0 on the others: the sums go over the ranks);
 * the mean of head h's over the summed steps (NaN without). */
void mimo_metrics_add_balance(mimo_metrics *m, const double *alpha, double steps);
double mimo_metrics_balance_weight(const mimo_metrics *m, int h);
double mimo_metrics_grad_norm(const mimo_metrics *m, int h);
double mimo_metrics_grad_cos(const mimo_metrics *m, int a, int b);

/* The layers whose output means are logged (their kind's log_mean:
 * softmax's): the i-th one's name and width (1), or 0 past the last.
 * Their sums (each value's over the rows, and the rows, so that sums
 * over ranks give the mean over the global rows) add the graph's last
 * forward of b rows; mimo_metrics_mean: the i-th one's value j over
 * them (NaN without rows). */
int mimo_metrics_mean_node(const mimo_graph *g, int i, const char **name, int *width);
void mimo_metrics_add_means(mimo_metrics *m, int b);
double mimo_metrics_mean(const mimo_metrics *m, int i, int j);

/* The exact ROC AUC of n (score, positive) pairs: the probability that a
 * positive scores above a negative, ties counting one half; NaN when all
 * are positive or all negative, or without memory for a sorted copy. */
double mimo_auc(const mimo_real *score, const unsigned char *positive,
                         size_t n, size_t stride);

#ifdef __cplusplus
}
#endif
#endif
