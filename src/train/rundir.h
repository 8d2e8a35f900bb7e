/* rundir.h — a run directory (`mimo train --out DIR`): config.yaml (the
 * resolved config), history.csv, and checkpoints/ with ckpt-<global
 * step>.h5 (the newest `keep` kept), best.h5 and last.h5. Rank 0 alone
 * writes it; saves are collective, their success agreed. */
#ifndef MIMO_TRAIN_RUNDIR_H
#define MIMO_TRAIN_RUNDIR_H

#include <mpi.h>

#include "mimo/checkpoint.h"

typedef struct {
    char *dir, *ckpt_dir, *history;  /* owned */
    int keep;
    MPI_Comm comm;                   /* MPI_COMM_NULL: one process */
    int rank, size;
} mimo_rundir;

/* Whether a new run may use dir: yes when it holds no earlier run
 * (history.csv, checkpoints) or the run resumes; with overwrite the
 * earlier run's checkpoints and history are deleted; else an error that
 * says how to resume or start again. On rank 0 (the caller agrees). */
int mimo_rundir_check(const char *dir, int resume, int overwrite);

/* Names the directory's files; rank 0 creates it and writes config.yaml
 * (config_text). Not collective (the caller agrees on the result). */
int mimo_rundir_open(mimo_rundir *d, const char *dir, int keep,
                     const char *config_text, MPI_Comm comm, int rank, int size);
void mimo_rundir_close(mimo_rundir *d);

/* checkpoints/NAME from m, st and best (may be NULL), written by rank 0,
 * its success agreed. Collective. */
int mimo_rundir_save(const mimo_rundir *d, const char *name, mimo_model *m,
                     const mimo_ckpt_state *st, const mimo_real *best);
/* checkpoints/ckpt-<global step>.h5, then all but the newest `keep` such
 * files removed. Collective. */
int mimo_rundir_save_periodic(const mimo_rundir *d, mimo_model *m,
                              const mimo_ckpt_state *st, const mimo_real *best);

#endif
