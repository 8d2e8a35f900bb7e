/* bench.h — `mimo bench` as a library call: trains a config as `mimo train` steps (shuffled
 * batches gathered from a dataset file or from synthetic rows in memory,
 * losses and metrics, prefetch, the step-late vote) and measures samples/s, the achieved GFLOP/s of the matrix products against
 * the sgemm rate measured in the same run, a per-phase breakdown, and
 * peak memory. Collective on comm when comm is not MPI_COMM_NULL. */
#ifndef MIMO_BENCH_H
#define MIMO_BENCH_H

#include "mimo/api.h"

#include <mpi.h>
#include <stddef.h>

#include "mimo/spec.h"
#include "mimo/trainer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most timed segments a run is split into. */
#define MIMO_BENCH_MAX_SEGMENTS 64
/* The phases of a step the result splits its time into: data, forward,
 * backward, optimizer, gradient sum. */
#define MIMO_BENCH_PHASES 5

typedef struct {
    long steps;            /* timed steps (default 200) */
    long warmup;           /* untimed steps first (default 20) */
    int segments;          /* timed segments for median and range (5; at
                            * most MIMO_BENCH_MAX_SEGMENTS) */
    mimo_dist_opts dist;   /* the gradient sum's form ({0}: auto) */
    MPI_Comm comm;
    int layers;            /* also time each layer kind (a clock read per
                            * layer and pass: separate from the figures) */
    double stall_warn;     /* the stall detector as mimo train runs it
                            * (default 60 s; < 0: off) */
    const char *data;      /* a dataset file, opened as mimo train opens
                            * data.train (NULL: synthetic rows) */
    long rows;             /* synthetic rows (default 8 global batches) */
    const char *trace_path; /* a Chrome trace of every rank's steps, or NULL */
    int strict_precision;  /* train.precision: bf16 where a rank has no native
                            * bf16: an error (else the bench runs float32
                            * and its precision line says why) */
} mimo_bench_opts;

/* The most layer kinds the per-kind profile lists apart (more are summed
 * as "other"). */
#define MIMO_BENCH_MAX_KINDS 32

/* One layer kind's share of a training step (--layers): the clock read
 * around each layer's forward and backward inside the graph's own passes
 * (not the exchange's layer_done), on rank 0's slice. */
typedef struct {
    const char *kind;      /* "conv2d", ... (static), or "other" */
    int layers;            /* of this kind in the network */
    double fwd_s, bwd_s;   /* mean seconds per step, all its layers */
    double flops;          /* per step, of its matrix products on the slice */
} mimo_bench_kind;

typedef struct {
    int ranks, threads;
    mimo_allreduce allreduce; /* the gradient sum's form in use */
    const char *exchange;  /* its implementation: "allreduce", "row_sparse"
                            * (embedding tables by rows), "node_shared" */
    long batch, steps;
    long rows;             /* the data's rows (file or synthetic) */
    int streamed;          /* the file is read as it goes, not held whole */
    size_t params;
    double sps_median, sps_min, sps_max;  /* samples/s, all ranks together */
    double flops_per_sample;              /* of the matrix products */
    double gflops;                        /* achieved, all ranks together */
    double sgemm_gflops;                  /* one rank, square sgemm */
    double sgemm_bound_sps;               /* samples/s sgemm alone allows */
    double phase[MIMO_BENCH_PHASES];  /* mean seconds per step: data, forward, backward,
                         optimizer, gradient sum (waiting for it, and
                         when shared the summing itself; rank 0) */
    double step_s;    /* mean seconds per step (rank 0) */
    double rss_mb;    /* peak resident memory of rank 0 */
    double pss_mb;    /* rank 0's resident memory at the end with pages
                         shared between ranks divided among them (Linux;
                         0 elsewhere) */
    double model_mb;  /* params + grads + moments + activations + data */
    double scratch_mb; /* the kinds' extra work buffers (im2col patches) */
    double ckpt_mb;   /* a checkpoint's size, about */
    double snap_mb;   /* the copy a save takes on rank 0 (its snapshot) */
    int slice;        /* rows of rank 0's slice of a global batch */
    double stall_warn;      /* the stall detector's setting (0: off) */
    double stall_marks;     /* collective waits it marked per step */
    double stall_mark_ns;   /* cost of one mark (enter + leave) */
    int n_kinds;      /* with o->layers: the per-kind profile of rank 0,
                       * largest share first */
    mimo_bench_kind kinds[MIMO_BENCH_MAX_KINDS];
    double diag_s;    /* train.grad_diagnostics: seconds per step in its
                       * work (rank 0; 0 when off) */
    int bf16;         /* the dense and conv products ran in bf16
                       * (train.precision: bf16 on a CPU with native bf16) */
    char precision[128]; /* "bf16 (avx512_bf16)", "float32", or "float32
                          * (bf16 asked for, but <why not>)" */
    double bf16_gflops; /* one rank, the square product in bf16 with float32
                         * accumulation (0: no native bf16) */
} mimo_bench_result;

MIMO_API int mimo_bench(const mimo_spec *spec, const mimo_bench_opts *o,
                        mimo_bench_result *r);

#ifdef __cplusplus
}
#endif
#endif
