/* runstate.h — what a resumed run needs beyond the parameters and the
 * optimizer's moments: where it stands (epoch, step, samples), the
 * learning-rate scale ReduceLROnPlateau left, the callbacks' states, the
 * best monitored value, and the sums of an interrupted epoch. It travels
 * as a checkpoint's named numbers and arrays (mimo_ckpt_state), packed and unpacked
 * here, with what fixes the position inside an epoch, checked on resume. */
#ifndef MIMO_TRAIN_RUNSTATE_H
#define MIMO_TRAIN_RUNSTATE_H

#include "mimo/checkpoint.h"
#include "train/schedule.h"

typedef struct {
    mimo_ckpt_state ck;  /* position and named numbers */
    double lr_scale;
    mimo_plateau_state plateau;
    mimo_early_state early;
    double ckpt_best;
    int ckpt_best_set;
    /* the training file's size, mtime and digest (mimo_data_fingerprint);
     * packed when have_data_fp */
    double data_fp[3];
    int have_data_fp;
} mimo_run_state;

/* Into st->ck: everything above, the epoch's sums so far over all ranks
 * (part), and what fixes the position: the batch size, the training
 * rows, the seed, shuffling and the number of ranks. */
int mimo_run_state_pack(mimo_run_state *st, const mimo_spec *spec,
                        size_t train_rows, int world, double lr,
                        const mimo_stats *part);
/* Back from st->ck after a load; the epoch's sums go into part on rank 0
 * (they are the sums over all ranks) and are zero on the others. Returns
 * MIMO_EINVAL when the sums do not fit part's metrics (another config's:
 * part is left empty), or MIMO_ENOMEM. */
int mimo_run_state_unpack(mimo_run_state *st, int rank, mimo_stats *part);

/* A checkpoint taken mid-epoch holds a position in that epoch's sample
 * order, which the batch size, the row count, the seed and shuffling
 * define: with any of them changed the rest of the epoch would skip or
 * repeat rows, an error naming path. At an epoch boundary a change is
 * allowed and noted. note (may be NULL) gets the notes. */
int mimo_run_state_check(const mimo_run_state *st, const mimo_spec *spec,
                         size_t train_rows, const char *path,
                         void (*note)(void *u, const char *msg), void *u);

/* Whether the training data is the data the checkpoint at path trained
 * on (its fingerprint then and now, *now): a different size or digest is
 * a note naming data_path (strict: an error), a different mtime alone a
 * milder note. A checkpoint without a fingerprint (older mimo) is not
 * checked. Call after the load, before packing the current fingerprint. */
int mimo_run_state_check_data(const mimo_run_state *st, const double now[3],
                              const char *path, const char *data_path, int strict,
                              void (*note)(void *u, const char *msg), void *u);

void mimo_run_state_free(mimo_run_state *st);

/* The settings a resumed run changes from the checkpoint's config (was):
 * optimizer, lr schedule, batch size, epochs, seed, shuffle, validation
 * split, loss weighting, each head's loss and weight: "key was -> now"
 * comma-separated into buf (len bytes, cut short when long); returns how
 * many changed. */
int mimo_run_state_changes(const mimo_spec *was, const mimo_spec *now, char *buf,
                           size_t len);

#endif
