/* model.h — a trainable model: a compiled graph with its flat parameter and
 * gradient buffers, its optimizer and its batch buffers; what a user does
 * with one (create, read its parameters, evaluate, predict; mimo_fit in
 * fit.h trains it). The parts of a training step are the library's
 * (core/model.h). Batches as the README says:
 * spec->train.batch_size is the GLOBAL batch; an epoch's order is a
 * permutation drawn from (seed, epoch); rank r of p takes its contiguous
 * slice of each global batch, and gradients are scaled by 1 / (actual
 * global batch). Nothing is allocated per step. No MPI here: a runtime
 * plugs in its exchange (core/exchange.h). */
#ifndef MIMO_MODEL_H
#define MIMO_MODEL_H

#include "mimo/api.h"

#include <stddef.h>
#include <stdint.h>

#include "mimo/graph.h"
#include "mimo/source.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-epoch results. The model adds batches into metrics (the sums);
 * mimo_stats_finish turns them into head[] (each head's loss and
 * metrics) and loss. */
typedef struct mimo_metrics mimo_metrics;

typedef struct {
    int n_heads;
    double loss;            /* the total: sum_h weight_h * head[h].loss over
                             * the heads with labelled rows (uncertainty
                             * weighting: exp(-s_h) loss_h + s_h) */
    long long count;        /* samples */
    mimo_head_stats *head;  /* n_heads entries */
    mimo_metrics *metrics;  /* the sums (bound to a graph: mimo_stats_bind,
                             * or by the first model call that adds) */
} mimo_stats;

MIMO_API int mimo_stats_init(mimo_stats *st, int n_heads);
/* Gives st the sums for g's heads (once; 0 or MIMO_ENOMEM). */
MIMO_API int mimo_stats_bind(mimo_stats *st, const mimo_graph *g);
/* Empties st (keeps its memory). */
MIMO_API void mimo_stats_reset(mimo_stats *st);
/* dst = src (both bound to the same graph). */
MIMO_API int mimo_stats_copy(mimo_stats *dst, const mimo_stats *src);
MIMO_API void mimo_stats_free(mimo_stats *st);

typedef struct mimo_model mimo_model;

/* How a step's gradient reaches the parameters is the model's exchange
 * (mimo/exchange.h): `local` until a runtime sets another with
 * mimo_model_set_exchange. The gradient buffer means one thing: zeros
 * after mimo_exchange_begin_step; between backward and
 * mimo_exchange_finish, this rank's gradient of the step's loss (each
 * sample's loss scaled by 1 / the global batch); after finish, nothing
 * (the next begin_step makes it zeros again). */

/* Compiles spec for its batch size, initializes parameters from its seed
 * and creates its optimizer. The model keeps a pointer to spec. */
MIMO_API int mimo_model_create(const mimo_spec *spec, mimo_model **out);
MIMO_API void mimo_model_free(mimo_model **m);

MIMO_API mimo_graph *mimo_model_graph(mimo_model *m);
/* The parameters in use: the exchange's when it owns them (node_shared:
 * shared by the ranks of a node; write them only through
 * mimo_dist_write_params then; load checkpoints before mimo_dist_attach),
 * else the model's own. */
MIMO_API mimo_real *mimo_model_params(mimo_model *m);
/* All parameters, and the trained ones at their front (the gradient
 * buffer's and each optimizer moment's length; see mimo_graph_param_count). */
MIMO_API size_t mimo_model_param_count(const mimo_model *m);
MIMO_API size_t mimo_model_trained_count(const mimo_model *m);
/* Learning rate used by the next steps (starts at the spec's). */
MIMO_API void mimo_model_set_lr(mimo_model *m, double lr);
MIMO_API double mimo_model_lr(const mimo_model *m);
/* A source over in-memory arrays matched by name to the model's inputs
 * (and head targets when targets is set). The model holds ONE such
 * binding: a second call rebinds, and earlier sources then read the new
 * arrays (mimo_fit binds before each use). */
MIMO_API int mimo_arrays_source(mimo_model *m, const mimo_dataset *d,
                                int targets, mimo_source *out);

/* Losses and metrics over src without training (sums into st). */
MIMO_API int mimo_model_evaluate(mimo_model *m, const mimo_source *src,
                                 mimo_stats *st);
/* Head outputs over all rows of src: outs[h] is (rows, units_h). */
MIMO_API int mimo_model_predict(mimo_model *m, const mimo_source *src,
                                mimo_real *const *outs);
/* Each head's loss and metrics from the sums, and the weighted total. */
MIMO_API void mimo_stats_finish(const mimo_model *m, mimo_stats *st);

#ifdef __cplusplus
}
#endif
#endif
