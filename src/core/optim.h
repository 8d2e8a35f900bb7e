/* optim.h — optimizers on ONE flat parameter buffer and ONE flat gradient
 * buffer, with each moment in one flat buffer too (a "slot"). The same
 * update runs on every rank after the gradients are summed over the ranks
 * (or, when the ranks of a node share the parameters, each rank updates
 * its slice of them: mimo_optim_begin_step .. mimo_optim_apply).
 *
 * Per step, in this order (g is the gradient, w the parameters):
 *   L2 decay (all but adamw):  g += weight_decay * w
 *   clipvalue c:               g = clamp(g, -c, c)
 *   clipnorm c:                g *= c / max(||g||_2, c)     (global norm)
 *   sgd:      plain w -= lr g; momentum m: v = m v - lr g, w += v;
 *             nesterov: w += m v - lr g                     (Keras)
 *   adam:     m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *             w -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *   adamw:    w -= lr weight_decay w (decoupled), then adam
 *   lazy adam(w): as above, but a value of an embedding table whose g is
 *             0 keeps w, m and v (TF's LazyAdam)
 *   rmsprop:  v = rho v + (1-rho) g^2; d = lr g / (sqrt(v) + eps);
 *             momentum m: u = m u + d, w -= u; else w -= d */
#ifndef MIMO_CORE_OPTIM_H
#define MIMO_CORE_OPTIM_H


#include <stddef.h>

#include "mimo/real.h"
#include "mimo/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mimo_optim mimo_optim;

/* An optimizer for n parameters; moments start at zero. */
int mimo_optim_create(const mimo_opt_spec *spec, size_t n, mimo_optim **out);
void mimo_optim_free(mimo_optim **o);

/* One update of params with grads at learning rate lr. grads is only read:
 * when weight decay (L2) or clipping apply, the gradient they give is
 * written into scratch (n values; may be grads itself). */
void mimo_optim_step(mimo_optim *o, mimo_real *params, const mimo_real *grads,
                     mimo_real *scratch, double lr);

/* mimo_optim_step in parts, for ranks that each update a slice
 * [lo, hi) of one shared parameter buffer: begin_step once per step on
 * every rank; then, when mimo_optim_prepares (L2 or clipping), prepare
 * writes the slice's decayed and clipped gradient into out (may be grads;
 * both hold the slice: grads[i - lo]) and returns its sum of squares, the
 * sum of which over all slices gives clip_scale; apply updates
 * params[lo, hi) and the slots' slices with grads x scale (1 unless
 * clipnorm). params and the slots are whole buffers. */
void mimo_optim_begin_step(mimo_optim *o);
int mimo_optim_prepares(const mimo_optim *o);
double mimo_optim_prepare(const mimo_optim *o, size_t lo, size_t hi,
                          const mimo_real *params, const mimo_real *grads,
                          mimo_real *out);
int mimo_optim_clips_norm(const mimo_optim *o);
/* Whether, inside the embedding tables, a zero gradient leaves a
 * parameter and every moment as they are (plain sgd: no momentum, decay
 * or clipping; lazy adam), so that an update of the values outside the
 * tables and of the table rows whose gradient may be nonzero
 * (mimo_optim_apply on their ranges, after one begin_step) equals the
 * whole update bitwise. */
int mimo_optim_row_sparse(const mimo_optim *o);
/* lazy: true (adam, adamw): the ranges [lo[k], hi[k]) of the trained
 * buffer that are embedding tables, where a value whose gradient is 0
 * this step keeps its value and moments (TF's LazyAdam: a different
 * optimizer from adam, whose moments decay everywhere every step).
 * Nothing without lazy. 0 or MIMO_ENOMEM. */
int mimo_optim_set_lazy(mimo_optim *o, int n, const size_t *lo, const size_t *hi);
double mimo_optim_clip_scale(const mimo_optim *o, double sum_sq);
void mimo_optim_apply(mimo_optim *o, size_t lo, size_t hi, mimo_real *params,
                      const mimo_real *grads, double scale, double lr);

/* A constraint after each update (task_balancing: gradnorm): values
 * [0, k) rescaled to sum to k, by whichever apply covers all of them
 * (slices of a shared buffer must not split [0, k): mimo_optim_renorm
 * says where the first may end). k 0: none. */
void mimo_optim_set_renorm(mimo_optim *o, size_t k);
size_t mimo_optim_renorm(const mimo_optim *o);

/* Moment buffers ("velocity", "m", "v", "momentum"), n values each. */
int mimo_optim_n_slots(const mimo_optim *o);
const char *mimo_optim_slot_name(const mimo_optim *o, int k);
mimo_real *mimo_optim_slot(mimo_optim *o, int k);
/* Makes slot k use buf (n values, owned by the caller, e.g. memory shared
 * by the ranks of a node) instead of its own buffer; NULL switches back.
 * The contents are not copied. */
void mimo_optim_lend_slot(mimo_optim *o, int k, mimo_real *buf);

/* Number of steps taken (adam's t); settable for resuming. */
long long mimo_optim_steps(const mimo_optim *o);
void mimo_optim_set_steps(mimo_optim *o, long long t);

#ifdef __cplusplus
}
#endif
#endif
