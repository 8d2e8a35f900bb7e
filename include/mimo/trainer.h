/* trainer.h — a whole training run as `mimo train` does it: datasets from
 * HDF5, validation, the learning-rate schedule and callbacks, a run
 * directory with the resolved config, history CSV and checkpoints, and
 * exact resume. Also predict and eval from a checkpoint alone. Reports
 * progress through callbacks: the library never prints. */
#ifndef MIMO_TRAINER_H
#define MIMO_TRAINER_H

#include "mimo/api.h"

#include <mpi.h>
#include <signal.h>

#include "mimo/checkpoint.h"
#include "mimo/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How often, in steps, the replicas' parameter checksums are compared
 * when mimo_train_opts.check_every is 0. */
#define MIMO_CHECK_EVERY_DEFAULT 100

/* The form of the gradient sum over the ranks (README: the gradient
 * exchange; comm/dist.c implements each). */
typedef enum {
    MIMO_ALLREDUCE_AUTO,
    MIMO_ALLREDUCE_SHARED,
    MIMO_ALLREDUCE_BUCKETED,
    MIMO_ALLREDUCE_BLOCKING
} mimo_allreduce;

/* "auto", "shared", "bucketed", "blocking" <-> mimo_allreduce; parse
 * returns -1 for anything else. */
MIMO_API int mimo_allreduce_parse(const char *s, mimo_allreduce *out);
MIMO_API const char *mimo_allreduce_name(mimo_allreduce a);

typedef struct {
    mimo_allreduce mode;
    size_t bucket_bytes;   /* bucket size (default 2 MiB) */
    int ranks_per_node;    /* shared: group every K consecutive ranks as a
                            * node (0: the nodes MPI reports) */
    int dense_embeddings;  /* 1: embedding tables summed in full by the
                            * allreduce, not by the rows each rank touched
                            * (--embedding-grads dense) */
} mimo_dist_opts;

/* Agreement after a phase where any rank may have failed on its own:
 * returns 0 if all ranks succeeded; otherwise the lowest failing rank gets
 * its own code back (its message intact, for it to print) and every other
 * rank gets MIMO_EPEER. Collective on comm. */
MIMO_API int mimo_agree(MPI_Comm comm, int rc);

/* What a step report carries: running means of this epoch so far. */
typedef struct {
    long epoch, epochs;    /* 0-based epoch, total */
    long step, steps;      /* steps done in this epoch, steps per epoch */
    int n_heads;
    const char *const *head_names;
    const double *head_loss; /* running mean per head */
    double loss;             /* weighted total */
    double samples_per_s, eta_s, lr;
} mimo_progress;

/* One row of the history: names[i] = values[i] (history CSV columns). */
typedef struct {
    int n;
    const char *const *names;
    const double *values;
} mimo_epoch_log;

typedef struct {
    const char *out_dir;     /* run directory (created); required */
    const char *resume;      /* checkpoint file or run directory, or NULL */
    const char *init;        /* file with /params to start from, or NULL:
                              * the tensors matching by name and shape
                              * (mimo_checkpoint_init_by_name), a table of
                              * what was loaded through on_message */
    int init_strict;         /* every tensor or an error (the table-free
                              * mimo_checkpoint_init_params) */
    const char *const *init_map; /* "OLD=NEW": the file's layer OLD read for
                                  * the layer NEW (n_init_map of them) */
    int n_init_map;
    const char *train_path;  /* dataset files (override the config's) */
    const char *val_path;
    void (*on_step)(void *user, const mimo_progress *p);
    void (*on_epoch)(void *user, const mimo_epoch_log *log);
    void (*on_message)(void *user, const char *msg); /* notes, warnings */
    void *user;
    /* data parallelism: ranks of comm (MPI_COMM_NULL: one process) */
    MPI_Comm comm;
    mimo_dist_opts dist;     /* the gradient sum's form ({0}: auto) */
    long check_every;        /* replica checksum every N steps (0:
                              * MIMO_CHECK_EVERY_DEFAULT) */
    const char *trace_path;  /* Chrome trace JSON, or NULL */
    /* preemption: when *stop becomes nonzero on any rank (a signal
     * handler sets it), or when time_limit seconds would be exceeded,
     * every rank finishes the same step, a checkpoint is written and
     * mimo_train returns MIMO_TRAIN_STOPPED */
    volatile sig_atomic_t *stop;
    double time_limit;       /* seconds from the start; 0: none */
    /* out_dir holds an earlier run (history, checkpoints) and resume is
     * NULL: an error, unless overwrite (then they are deleted first) */
    int overwrite;
    /* the stall detector (several ranks): when a rank has waited in a
     * collective for stall_warn seconds, rank 0 reports (on_message) which
     * ranks have not arrived, every stall_warn seconds while it lasts;
     * after stall_abort seconds on_fatal gets the message and must end
     * the job (MPI_Abort). 0: off. */
    double stall_warn, stall_abort; /* (the command line's default warn:
                                     * MIMO_STALL_WARN_DEFAULT) */
    void (*on_fatal)(void *user, const char *msg);
    /* start even when the model's memory estimate exceeds the memory
     * available (otherwise an error saying both) */
    int force;
    /* resuming on a training file other than the one the checkpoint
     * trained on (size or sampled rows differ): an error (else a warning) */
    int strict_data;
    /* train.precision: bf16 where a rank's CPU has no native bf16: an
     * error (else a note, and the run trains in float32) */
    int strict_precision;
} mimo_train_opts;

/* Seconds a rank may wait in a collective before the stall detector
 * warns, unless told otherwise (mimo train --stall-warn, mimo bench). */
#define MIMO_STALL_WARN_DEFAULT 60

/* mimo_train's result when it stopped early with a checkpoint written
 * (signal or time limit): the run can be resumed. */
#define MIMO_TRAIN_STOPPED 1

/* Trains spec (which holds the config text and file name) as configured.
 * Returns 0 when all epochs ran (or early stopping ended the run), or an
 * error code with mimo_errmsg() saying why; the newest checkpoint in the
 * run directory is intact either way. Collective on o->comm: rank 0 alone
 * writes the run directory; set-up errors are agreed (the failing rank
 * gets its code, the others MIMO_EPEER); an error while training returns
 * on the rank that met it, and the caller should MPI_Abort. */
MIMO_API int mimo_train(mimo_spec *spec, const mimo_train_opts *o);

/* Finds the newest valid checkpoint of a run directory (a file path is
 * returned as is). Writes it into path (len bytes). o->resume may be
 * "auto" in mimo_train: the newest checkpoint of o->out_dir if there is
 * one, else a fresh start. */
MIMO_API int mimo_find_checkpoint(const char *dir_or_file, char *path, size_t len);

/* Evaluates a checkpoint on a dataset file: per-head means into *st
 * (allocated here: free with mimo_stats_free), the model's spec into spec
 * (free with mimo_spec_free). */
MIMO_API int mimo_eval_file(const char *ckpt, const char *data, MPI_Comm comm,
                   mimo_spec *spec, mimo_stats *st);

/* Writes a predictions file: one float32 (N, units) dataset per head.
 * With comm (collective), each rank predicts its share; rank 0 writes. */
MIMO_API int mimo_predict_file(const char *ckpt, const char *data, MPI_Comm comm,
                      const char *out);

#ifdef __cplusplus
}
#endif
#endif
