/* ffi.c — the entry points of mimo/ffi.h for bindings: a checkpoint's
 * model in one call, head names, and a training job started from a
 * config path, with MPI started here when a launcher started the
 * process (the binding's interpreter does not). */
#include "mimo/ffi.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "mimo/checkpoint.h"
#include "mimo/config.h"
#include "mimo/error.h"
#include "mimo/graph.h"
#include "mimo/trainer.h"

static int mpi_started; /* by mimo_train_config */

size_t mimo_spec_sizeof(void) { return sizeof(mimo_spec); }

int mimo_load(const char *checkpoint, mimo_spec *spec, mimo_model **out)
{
    char path[4096];
    *out = NULL;
    mimo_spec_defaults(spec);
    int rc = mimo_find_checkpoint(checkpoint, path, sizeof path);
    if (rc || (rc = mimo_checkpoint_spec(path, NULL, 0, spec)))
        return rc;
    if (spec->train.batch_size < 256)
        spec->train.batch_size = 256; /* inference batch: any size works */
    spec->train.accumulate = 1;           /* no training step here: */
    spec->train.grad_diagnostics = 0;     /* no backward, no update */
    spec->train.task_balancing = MIMO_BALANCING_NONE;
    /* train.precision: bf16 is a training speed: inference from a
     * checkpoint runs float32, the same predictions on every machine */
    spec->train.precision = MIMO_PRECISION_FLOAT32;
    if (!(rc = mimo_model_create(spec, out)) &&
        (rc = mimo_checkpoint_load(path, *out, NULL, NULL, NULL)))
        mimo_model_free(out);
    return rc;
}

const char *mimo_graph_head_name(const mimo_graph *g, int h)
{
    return h >= 0 && h < mimo_graph_n_heads(g) ? mimo_graph_head_spec(g, h)->name : NULL;
}

/* Whether a launcher (mpirun, srun) started this process. */
static int launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

static int mpi_world(MPI_Comm *comm, int *rank)
{
    int on = 0, size = 1, provided;
    *comm = MPI_COMM_NULL, *rank = 0;
    MPI_Initialized(&on);
    if (!on && launched()) {
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
            return mimo_error(MIMO_EMPI, "MPI_Init_thread failed");
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        mpi_started = on = 1;
    }
    if (on) {
        MPI_Comm_rank(MPI_COMM_WORLD, rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        if (size > 1)
            *comm = MPI_COMM_WORLD;
    }
    return 0;
}

static void print_epoch(void *user, const mimo_epoch_log *log)
{
    (void)user;
    for (int i = 0; i < log->n; i++)
        printf("%s%s %.6g", i ? " - " : "", log->names[i], log->values[i]);
    printf("\n");
    fflush(stdout);
}

int mimo_train_config(const char *config, const char *out, const char *const *sets,
                      int n_sets, int quiet)
{
    MPI_Comm comm;
    int rank, rc = mpi_world(&comm, &rank);
    mimo_spec spec;
    if (rc)
        return rc;
    if ((rc = mimo_config_load(config, sets, n_sets, &spec)))
        return comm != MPI_COMM_NULL ? mimo_agree(comm, rc) : rc;
    mimo_train_opts o = {.out_dir = out, .comm = comm,
                         .on_epoch = quiet || rank ? NULL : print_epoch,
                         .stall_warn = MIMO_STALL_WARN_DEFAULT};
    rc = mimo_train(&spec, &o);
    mimo_spec_free(&spec);
    return rc;
}

void mimo_mpi_end(void)
{
    int done = 0;
    if (mpi_started && (MPI_Finalized(&done), !done))
        MPI_Finalize();
    mpi_started = 0;
}
