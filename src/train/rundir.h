/* rundir.h — a run directory (`mimo train --out DIR`): config.yaml (the
 * resolved config), history.csv, and checkpoints/ with ckpt-<global
 * step>.h5 (the newest `keep` kept), best.h5 and last.h5. Rank 0 alone
 * writes it; saves are collective, their success agreed.
 *
 * A save copies the parameters, optimizer moments, best parameters and
 * run state into a snapshot (kept for the run's next saves) and hands it
 * to one background writer thread (build the file in memory under
 * mimo_h5_lock, write, fsync, rename, the second names as hard links,
 * pruning), so training goes on after the copy. One save is in flight at most: the next save
 * waits for it first, and its error (naming the file) is returned by the
 * next save, mimo_rundir_finish or mimo_rundir_wait. */
#ifndef MIMO_TRAIN_RUNDIR_H
#define MIMO_TRAIN_RUNDIR_H

#include <mpi.h>
#include <stdint.h>

#include "io/checkpoint_impl.h"
#include "mimo/checkpoint.h"

typedef struct {
    char *dir, *ckpt_dir, *history;  /* owned */
    int keep;
    MPI_Comm comm;                   /* MPI_COMM_NULL: one process */
    int rank, size;
    char last[64];                   /* the newest checkpoint this run wrote */
    int64_t last_gs;                 /* the global step of the newest save handed
                                        over (written or in flight); -1: none */
    struct mimo_rundir_job *job;     /* the save in flight (rank 0), or NULL */
    mimo_ckpt_snap snap;             /* what it builds from (rank 0; reused) */
    void *pre;                       /* the training data's /preprocessing,
                                        which every checkpoint carries (an
                                        image, io/prep.h; owned), or NULL */
    size_t pre_len;
} mimo_rundir;

/* The run directory's exclusive lock, held by rank 0 for the whole run:
 * flock() on DIR/lock (DIR is created), released by the kernel when the
 * process ends in any way, so a kill -9 leaves no stale lock. The file
 * says who holds it (pid, host, start time); a second run gets an error
 * naming them. A lock that is a symbolic link, not a regular file, or a
 * file with other names (hard links) is refused, never written through;
 * so is a DIR/checkpoints that is a symbolic link or not a directory.
 * *fd: the lock's descriptor (-1 when not held). */
int mimo_rundir_lock(const char *dir, int *fd);
void mimo_rundir_unlock(int *fd);

/* Removes the temporaries of atomic writes (NAME.tmp.<pid>.<random>, or
 * an older mimo's NAME.tmp.<pid>; regular files, not links) in dir and
 * dir/checkpoints whose process is no longer alive on this host (never a
 * live writer's); *n and *bytes say what went. Under the lock, on rank 0. */
void mimo_rundir_clean_tmp(const char *dir, int *n, double *bytes);

/* DIR/status, written atomically by rank 0: "state: running|stopped|
 * finished|failed" and lines saying who, when and (stopped) from which
 * checkpoint to resume. Scripts read it instead of a launcher's exit
 * status. Not collective; a no-op on other ranks. */
int mimo_rundir_status(const mimo_rundir *d, const char *state, const char *detail);
/* "failed" with detail, from any rank: the one that failed alone, whose
 * error the others never learn (the app ends the job with MPI_Abort, rank
 * 0 dies in a collective and would leave "running"). */
int mimo_rundir_status_alone(const mimo_rundir *d, const char *detail);

/* Whether a new run may use dir: yes when it holds no earlier run
 * (history.csv, checkpoints) or the run resumes; with overwrite the
 * earlier run's checkpoints and history are deleted — only files that
 * mimo wrote there: named as checkpoints (ckpt-<step>.h5, last.h5,
 * best.h5), regular files (not links), marked as mimo checkpoints; any
 * other file stays. Else an error that
 * says how to resume or start again. On rank 0 (the caller agrees). */
int mimo_rundir_check(const char *dir, int resume, int overwrite);

/* Names the directory's files; rank 0 creates it and writes config.yaml
 * (config_text). Not collective (the caller agrees on the result). */
int mimo_rundir_open(mimo_rundir *d, const char *dir, int keep,
                     const char *config_text, MPI_Comm comm, int rank, int size);
void mimo_rundir_close(mimo_rundir *d);

/* checkpoints/NAME from m, st and best (may be NULL), written by rank 0
 * in the background (after the save before it is complete); the success
 * of building it (and of the save before) agreed. Collective. */
int mimo_rundir_save(mimo_rundir *d, const char *name, mimo_model *m,
                     const mimo_ckpt_state *st, const mimo_real *best);
/* checkpoints/ckpt-<global step>.h5 (and best.h5 as a second name of it
 * when also_best), then all but the newest `keep` such files of this run's
 * lineage (st->lineage) removed; checkpoints of other runs are never
 * touched. Collective, in the background as mimo_rundir_save. */
int mimo_rundir_save_periodic(mimo_rundir *d, mimo_model *m,
                              const mimo_ckpt_state *st, const mimo_real *best,
                              int also_best);
/* checkpoints/NAME as a second name (hard link, else a copy) of the newest
 * checkpoint this run saved, whose content it must want (the caller knows
 * nothing changed since: see last_gs). Collective. */
int mimo_rundir_link(mimo_rundir *d, const char *name);
/* Waits for the save in flight (rank 0; a no-op elsewhere) and returns its
 * error. Not collective: for ends after an error. */
int mimo_rundir_wait(mimo_rundir *d);
/* Waits for the save in flight, its success agreed. Collective: the end
 * of a run that every rank reaches (finished, or stopped to be resumed). */
int mimo_rundir_finish(mimo_rundir *d);

/* The checkpoints `--resume auto` may start from: DIR/checkpoints/\*.h5
 * but best.h5 (the best, not the newest), newest first by the global step
 * each file holds; a file whose step cannot be read (truncated, damaged)
 * sorts by the step its name ckpt-<step>.h5 gives, else (last.h5) first,
 * so the caller tries it and says why it is skipped. At equal steps
 * last.h5 first. Several names of one file (last.h5 is a hard link of the
 * newest periodic checkpoint) share `file`, the index of their first.
 * *n 0 when there is none. Free with mimo_resume_list_free. */
typedef struct {
    char *path;
    int64_t gs;
    size_t file;
} mimo_resume_entry;

int mimo_resume_list(const char *dir, mimo_resume_entry **list, size_t *n);
void mimo_resume_list_free(mimo_resume_entry **list, size_t n);

#endif
