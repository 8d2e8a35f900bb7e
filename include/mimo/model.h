/* model.h — a trainable model: a compiled graph with its flat parameter and
 * gradient buffers and its optimizer, trained on in-memory arrays.
 * Batches follow DESIGN.md: spec->train.batch_size is the GLOBAL batch; an
 * epoch's order is a permutation drawn from (seed, epoch); rank r of p
 * takes its contiguous slice of each global batch, and gradients are
 * scaled by 1 / (actual global batch). Nothing is allocated per step. */
#ifndef MIMO_MODEL_H
#define MIMO_MODEL_H

#include "mimo/api.h"

#include <stddef.h>
#include <stdint.h>

#include "mimo/graph.h"
#include "mimo/optim.h"
#include "mimo/source.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-epoch results: means over samples after mimo_stats_finish. */
typedef struct {
    int n_heads;
    double loss;            /* sum_h weight_h * head[h].loss */
    long long count;        /* samples */
    mimo_head_stats *head;  /* n_heads entries */
} mimo_stats;

MIMO_API int mimo_stats_init(mimo_stats *st, int n_heads);
MIMO_API void mimo_stats_reset(mimo_stats *st);
MIMO_API void mimo_stats_free(mimo_stats *st);

typedef struct mimo_model mimo_model;

/* What a data-parallel runtime plugs into each training step (all
 * optional).
 * - grads, when set, is the buffer backward writes this rank's gradient
 *   into (n values, e.g. in memory shared with the other ranks of a node)
 *   instead of the model's own; with grads_zeroed the runtime leaves it
 *   all zeros after each step, so the model does not clear it. params,
 *   when set, is the parameter buffer in use (shared by the ranks of a
 *   node) instead of the model's own.
 * - The model calls begin before backward; layer_done after each layer's
 *   backward (the first `done` gradient values are final); then either
 *   apply, which sums the gradients over the ranks and updates the
 *   parameters itself (with shared parameters each rank its slice), or
 *   finish, which points *sum at the sum over ranks (the optimizer only
 *   reads it: grads itself when summed in place) for the model's
 *   optimizer step; and phase around "data", "forward", "backward" and
 *   "optimizer" (end = 0 / 1). One process with plain SGD and neither
 *   apply nor finish set has backward apply the step itself
 *   (mimo_graph_backward_sgd): no optimizer phase then. */
typedef struct {
    void *user;
    mimo_real *grads, *params;
    int grads_zeroed;
    void (*begin)(void *user, mimo_real *grads, size_t n);
    void (*layer_done)(void *user, const char *layer, size_t done);
    int (*finish)(void *user, mimo_real *grads, size_t n, const mimo_real **sum);
    int (*apply)(void *user, mimo_optim *o, mimo_real *params, double lr);
    void (*phase)(void *user, const char *name, int end);
} mimo_step_hooks;

/* Compiles spec for its batch size, initializes parameters from its seed
 * and creates its optimizer. The model keeps a pointer to spec. */
MIMO_API int mimo_model_create(const mimo_spec *spec, mimo_model **out);
MIMO_API void mimo_model_free(mimo_model **m);

MIMO_API mimo_graph *mimo_model_graph(mimo_model *m);
/* The parameters in use. Under --allreduce shared (after
 * mimo_dist_attach) they are shared by the ranks of a node: write them
 * only through mimo_dist_write_params then; load checkpoints before. */
MIMO_API mimo_real *mimo_model_params(mimo_model *m);
/* The buffer this rank's backward writes its gradient into (with the
 * bucketed and blocking sums it then holds the sum over ranks; the shared
 * form leaves zeros in it, and one process with plain SGD never writes
 * it: backward updates the parameters). */
MIMO_API mimo_real *mimo_model_grads(mimo_model *m);
MIMO_API mimo_optim *mimo_model_optim(mimo_model *m);
MIMO_API size_t mimo_model_param_count(const mimo_model *m);
/* Learning rate used by the next steps (starts at the spec's). */
MIMO_API void mimo_model_set_lr(mimo_model *m, double lr);
MIMO_API double mimo_model_lr(const mimo_model *m);
/* This process is rank `rank` of `size` (default 0 of 1); hooks (may be
 * NULL) is copied. */
MIMO_API void mimo_model_set_partition(mimo_model *m, int rank, int size,
                              const mimo_step_hooks *hooks);
MIMO_API int mimo_model_rank(const mimo_model *m);
MIMO_API int mimo_model_size(const mimo_model *m);

/* A source over in-memory arrays matched by name to the model's inputs
 * (and head targets when targets is set). The model holds ONE such
 * binding: a second call rebinds, and earlier sources then read the new
 * arrays (mimo_fit binds before each use). */
MIMO_API int mimo_arrays_source(mimo_model *m, const mimo_dataset *d, int targets,
                       mimo_source *out);

/* Called after each training step with that step's sums (b rows); a
 * nonzero return stops the epoch after this step. */
typedef int (*mimo_step_fn)(void *user, long epoch, long step, long steps,
                            const mimo_head_stats *step_stats, int b);

/* Steps per epoch for n rows at the spec's global batch. */
MIMO_API long mimo_model_steps_per_epoch(const mimo_model *m, size_t n);

/* One epoch over src, from step first_step (0, or where a resumed run
 * stopped): the order is the permutation of (seed, epoch) when the spec
 * shuffles. Adds this rank's sums into st (may be NULL); calls on_step
 * (may be NULL) after each step. Returns 0 at the end of the epoch, 1 when
 * on_step returned nonzero (after that step), or an error (a non-finite loss is MIMO_ENUM
 * naming the step and the head). */
MIMO_API int mimo_model_train_epoch(mimo_model *m, const mimo_source *src, long epoch,
                           long first_step, mimo_stats *st,
                           mimo_step_fn on_step, void *user);
/* Losses and metrics over src without training (sums into st). */
MIMO_API int mimo_model_evaluate(mimo_model *m, const mimo_source *src, mimo_stats *st);
/* Head outputs over all rows of src: outs[h] is (rows, units_h). */
MIMO_API int mimo_model_predict(mimo_model *m, const mimo_source *src,
                       mimo_real *const *outs);
/* Divides the sums by the count and forms the weighted total. */
MIMO_API void mimo_stats_finish(const mimo_model *m, mimo_stats *st);

/* Called after each epoch; a nonzero return stops training. */
typedef int (*mimo_epoch_fn)(void *user, long epoch, const mimo_stats *train,
                             const mimo_stats *val);

/* Trains spec->train.epochs epochs on train, evaluating on val after each
 * (or on the last validation_split of train, Keras-style, when val is NULL
 * and the spec asks for a split). */
MIMO_API int mimo_fit(mimo_model *m, const mimo_dataset *train, const mimo_dataset *val,
             mimo_epoch_fn on_epoch, void *user);

#ifdef __cplusplus
}
#endif
#endif
