/* fit.h — training on in-memory arrays, the library way (Keras' fit), and
 * the training step every loop of mimo runs (train/step.c): `mimo train`,
 * mimo_fit and `mimo bench` alike. No MPI or HDF5 here. */
#ifndef MIMO_FIT_H
#define MIMO_FIT_H

#include "mimo/api.h"
#include "mimo/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One training step on the global batch rows[0, gb) (global row indices
 * of src, in the epoch's order): this rank's slice of them, the row
 * weights' global sums, forward, loss, backward, update. st (may be NULL)
 * receives this rank's sums of the step (added to). epoch and step
 * (0-based) only name the step in errors: a non-finite loss is MIMO_ENUM
 * naming the head and the step. */
MIMO_API int mimo_train_step(mimo_model *m, const mimo_source *src,
                             const uint64_t *rows, size_t gb, long epoch,
                             long step, mimo_stats *st);

/* Asks src to read ahead this rank's rows of the global batch of B rows
 * (fewer at the epoch's end) that starts at order[start], where order is
 * the epoch's order of src's rows: what the next mimo_train_step will
 * read. Nothing when src does not read ahead or the epoch ends first. */
MIMO_API void mimo_train_prefetch(mimo_model *m, const mimo_source *src,
                                  const uint64_t *order, size_t start, size_t B);

/* One epoch over src from step first_step (0, or where a resumed run
 * stopped), adding this rank's sums into st (may be NULL); each step at
 * the spec's lr schedule's rate, as mimo train runs it. */
MIMO_API int mimo_model_train_epoch(mimo_model *m, const mimo_source *src,
                                    long epoch, long first_step, mimo_stats *st);

/* Called after each epoch; a nonzero return stops training. */
typedef int (*mimo_epoch_fn)(void *user, long epoch, const mimo_stats *train,
                             const mimo_stats *val);

/* Trains spec->train.epochs epochs on train, evaluating on val after each
 * (or on the last validation_split of train, Keras-style, when val is NULL
 * and the spec asks for a split). */
MIMO_API int mimo_fit(mimo_model *m, const mimo_dataset *train,
                      const mimo_dataset *val, mimo_epoch_fn on_epoch,
                      void *user);

#ifdef __cplusplus
}
#endif
#endif
