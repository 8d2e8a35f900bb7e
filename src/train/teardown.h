/* teardown.h — the lone-failure rule, in one place, and the release of
 * what a job holds on its communicator by that rule (`mimo train`'s loop,
 * eval/predict, `mimo bench`).
 *
 * The rule: an error one rank met alone (rc < 0, on a communicator of
 * more than one rank, not agreed by mimo_agree) is not known to the other
 * ranks, which may be waiting in a collective or gone. That rank makes no
 * collective call any more: it abandons its data files and runtime (its
 * own memory freed, no collective close of files or windows), keeps the
 * communicator, writes why in DIR/status (mimo_rundir_status_alone), and
 * the caller ends the job with MPI_Abort. An agreed error, a stop (rc >
 * 0) or one process: everything is released normally, every rank alike. */
#ifndef MIMO_TRAIN_TEARDOWN_H
#define MIMO_TRAIN_TEARDOWN_H

#include "mimo/dataset.h"
#include "comm/dist.h"

/* Whether rc is an error this rank met alone on comm (the rule above); a
 * communicator whose size cannot be read counts as more than one rank. */
int mimo_failed_alone(MPI_Comm comm, int rc);

/* What a job holds on its communicator, released in this order; NULL
 * members (and members pointing at NULL) are skipped. */
typedef struct mimo_held {
    mimo_data **data[2]; /* data files: a collective close when streamed */
    mimo_dist **dist;    /* the runtime: its windows are freed collectively */
    MPI_Comm *comm;      /* a communicator of mimo_comm_dup, freed last */
} mimo_held;

/* Releases h: closed and freed, or, when alone (mimo_failed_alone),
 * abandoned, and the communicator kept. */
void mimo_release(const mimo_held *h, int alone);

#endif
