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
    char last[64];                   /* the newest checkpoint this run wrote */
} mimo_rundir;

/* The run directory's exclusive lock, held by rank 0 for the whole run:
 * flock() on DIR/lock (DIR is created), released by the kernel when the
 * process ends in any way, so a kill -9 leaves no stale lock. The file
 * says who holds it (pid, host, start time); a second run gets an error
 * naming them. *fd: the lock's descriptor (-1 when not held). */
int mimo_rundir_lock(const char *dir, int *fd);
void mimo_rundir_unlock(int *fd);

/* Removes the temporaries of atomic writes (NAME.tmp.<pid>) in dir and
 * dir/checkpoints whose process is no longer alive on this host (never a
 * live writer's); *n and *bytes say what went. Under the lock, on rank 0. */
void mimo_rundir_clean_tmp(const char *dir, int *n, double *bytes);

/* DIR/status, written atomically by rank 0: "state: running|stopped|
 * finished|failed" and lines saying who, when and (stopped) from which
 * checkpoint to resume. Scripts read it instead of a launcher's exit
 * status. Not collective; a no-op on other ranks. */
int mimo_rundir_status(const mimo_rundir *d, const char *state, const char *detail);

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
int mimo_rundir_save(mimo_rundir *d, const char *name, mimo_model *m,
                     const mimo_ckpt_state *st, const mimo_real *best);
/* checkpoints/ckpt-<global step>.h5, then all but the newest `keep` such
 * files of this run's lineage (st->lineage) removed; checkpoints of other
 * runs are never touched. Collective. */
int mimo_rundir_save_periodic(mimo_rundir *d, mimo_model *m,
                              const mimo_ckpt_state *st, const mimo_real *best);

#endif
