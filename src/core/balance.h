/* balance.h (internal) — task balancing (train.task_balancing): the
 * heads' gradients kept apart, then combined on the shared parameters by
 * a rule other than their sum. pcgrad (Yu et al., NeurIPS 2020): each
 * head's gradient of the shared parameters (those two heads or more
 * reach), summed over the global batch (every rank, every micro-batch),
 * is projected onto the normal plane of each other head's original
 * gradient it conflicts with (negative dot product), the others taken in
 * an order drawn from (seed, epoch, step) — the same on every rank and
 * any number of ranks; the shared parameters get the sum of the
 * projected gradients, every other parameter its head's own gradient. */
#ifndef MIMO_CORE_BALANCE_H
#define MIMO_CORE_BALANCE_H

#include <stddef.h>
#include <stdint.h>

#include "core/graph.h"

typedef struct mimo_balance mimo_balance;

/* For g's heads and trained parameters (0, MIMO_ENOMEM). */
int mimo_balance_create(const mimo_graph *g, mimo_balance **out);
void mimo_balance_free(mimo_balance **b);
/* Head h's gradient buffer (trained count values): backward adds head
 * h's part of the step's gradient into it. Zeros after begin. */
mimo_real *mimo_balance_grads(mimo_balance *b, int h);
void mimo_balance_begin(mimo_balance *b);
/* The values two heads or more reach (the projection's length). */
size_t mimo_balance_shared(const mimo_balance *b);
/* The step's gradient into grads (trained count values) by pcgrad: the
 * heads' shared parts summed over the ranks with reduce (NULL: one
 * process; collective otherwise), projected and added up — written on
 * rank 0, zeros elsewhere, so that the exchange's sum over the ranks is
 * exactly it — and the other values as this rank's sum of the heads'
 * (the exchange sums them as ever). 0, or reduce's error. */
int mimo_balance_pcgrad(mimo_balance *b, mimo_real *grads, int rank,
                        uint64_t seed, long epoch, long step,
                        int (*reduce)(void *state, double *v, int n),
                        void *state);
/* MGDA-UB's weights: the point alpha of the simplex (T values) whose
 * combination of the heads' gradients has the least norm, from their
 * Gram matrix M (T x T, symmetric), by Sener & Koltun's solver as
 * published (MinNormSolver.find_min_norm_element_FW: the best pair, then
 * Frank-Wolfe steps, at most 250, until the weights move by less than
 * 1e-5); the PyTorch oracle replays it. */
void mimo_balance_min_norm(const double *M, int T, double *alpha);
/* GradNorm (Chen et al., ICML 2018, eq. 2): the gradient of
 * L_grad = sum_h |G_h - mean(G) r_h^alpha| with respect to the heads'
 * weights w (T values), the targets mean(G) r_h^alpha held constant as
 * the paper says. G_h = sqrt(sq[h]) is the norm of the weighted head's
 * gradient at the shared representation (so dG_h/dw_h = G_h / w_h);
 * r_h = (loss_h / l0_h) / mean over heads of the same. Only heads with
 * active[h] take part in the means; the others get 0. */
void mimo_balance_gradnorm(int T, const double *sq, const double *loss,
                           const double *l0, const int *active,
                           const mimo_real *w, double alpha, double *grad);
/* The order in which head i meets the others at (seed, epoch, step):
 * order[0 .. n_heads - 2] (tests and the PyTorch oracle replay it). */
void mimo_balance_order(int n_heads, uint64_t seed, long epoch, long step,
                        int i, int *order);

#endif
