/* evaluate.c — evaluation and prediction from a checkpoint alone (its config
 * is inside): each rank sweeps its contiguous share of the rows; eval sums
 * the statistics over the ranks, predict assembles every head's outputs
 * on rank 0, which writes the predictions file atomically. The data is an
 * HDF5 dataset file, or a raw CSV (*.csv, *.tsv) converted as the import
 * converted the training data, by the preprocessing the checkpoint
 * carries: each rank converts the whole CSV into a file in memory and
 * reads its share of the rows from it, as from a file on disk. */
#include <limits.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "base/fsutil.h"
#include "comm/mpicall.h"
#include "io/checkpoint_impl.h"
#include "io/dataset_impl.h"
#include "io/h5_impl.h"
#include "io/prep.h"
#include "core/model.h"
#include "mimo/dataset.h"
#include "comm/dist.h"
#include "mimo/error.h"
#include "mimo/ffi.h"
#include "mimo/trainer.h"
#include "train/history.h"
#include "train/teardown.h"

/* Loads a checkpoint's spec and parameters into a model, partitioned
 * over comm's ranks (each rank sweeps its contiguous share of the rows). */
static int load_for_inference(const char *ckpt, MPI_Comm comm, mimo_spec *spec,
                              mimo_model **m)
{
    int rc = mimo_load(ckpt, spec, m);
    if (!rc && comm != MPI_COMM_NULL) {
        int rank, size;
        MIMO_MPI(MPI_Comm_rank(comm, &rank));
        MIMO_MPI(MPI_Comm_size(comm, &size));
        mimo_model_set_exchange(*m, rank, size, NULL);
    }
    return rc;
}

static int agree_on(MPI_Comm comm, int rc)
{
    return comm != MPI_COMM_NULL ? mimo_agree(comm, rc) : rc;
}

/* Whether data names a raw CSV (by its name: .csv or .tsv). */
static int is_csv(const char *data)
{
    size_t n = strlen(data);
    return n > 4 && (!strcasecmp(data + n - 4, ".csv") ||
                     !strcasecmp(data + n - 4, ".tsv"));
}

/* A raw CSV through ckpt's /preprocessing into a file in memory. */
static int csv_image(const char *ckpt, const char *data, int targets, void **img,
                     size_t *len)
{
    void *pre = NULL;
    size_t plen = 0;
    hid_t pf = -1;
    int rc = mimo_checkpoint_prep(ckpt, &pre, &plen);
    if (!rc && !pre)
        rc = mimo_error(MIMO_EINVAL, "%s: a raw CSV needs the vocabularies and "
                        "statistics of the training data, and %s has none (no "
                        "/preprocessing: its training file was not made by `mimo "
                        "import csv --schema`, or an older mimo trained it): give "
                        "an HDF5 dataset file instead", data, ckpt);
    if (!rc && (pf = mimo_prep_open(pre, plen, ckpt)) < 0)
        rc = (int)pf;
    if (!rc)
        rc = mimo_tab_raw(data, ckpt, pf, targets, img, len);
    if (pf >= 0)
        H5Fclose(pf);
    free(pre);
    return rc;
}

/* mimo_data_open, or a raw CSV's rows (every rank converts them all). */
static int open_data(const char *ckpt, const char *data, const mimo_graph *g,
                     int what, MPI_Comm comm, mimo_data **d)
{
    if (!is_csv(data))
        return mimo_data_open(data, g, what, comm, d);
    void *img = NULL;
    size_t len = 0;
    int rc = agree_on(comm, csv_image(ckpt, data, what != MIMO_DATA_INPUTS, &img,
                                      &len));
    if (!rc)
        rc = mimo_data_open_image(data, img, len, g, what, comm, d);
    free(img);
    return rc;
}

static int eval_on(const char *ckpt, const char *data, MPI_Comm comm,
                   mimo_spec *spec, mimo_stats *st)
{
    mimo_model *m = NULL;
    mimo_data *d = NULL;
    int rc = load_for_inference(ckpt, comm, spec, &m);
    if (!rc)
        rc = mimo_stats_init(st, mimo_graph_n_heads(mimo_model_graph(m)));
    if (!rc)
        rc = mimo_stats_bind(st, mimo_model_graph(m));
    if (!(rc = agree_on(comm, rc)) &&
        !(rc = open_data(ckpt, data, mimo_model_graph(m), MIMO_DATA_TARGETS, comm,
                         &d))) {
        mimo_source s = mimo_data_source(d);
        rc = mimo_model_evaluate(m, &s, st);
        if (!rc && comm != MPI_COMM_NULL) {
            mimo_dist *dist = NULL;
            if (!(rc = mimo_dist_create(comm, 1, NULL, NULL, &dist)))
                rc = mimo_dist_sum_stats(dist, st);
            mimo_dist_free(&dist);
        }
        if (!rc) {
            mimo_stats_finish(m, st);
            rc = agree_on(comm, mimo_stats_check_finite(st, mimo_model_graph(m),
                                                        "evaluation", data));
        }
    }
    mimo_release(&(mimo_held){.data = {&d}}, mimo_failed_alone(comm, rc));
    mimo_model_free(&m);
    return rc;
}

int mimo_eval_file(const char *ckpt, const char *data, MPI_Comm comm,
                   mimo_spec *spec, mimo_stats *st)
{
    MPI_Comm own;
    memset(st, 0, sizeof *st);
    int rc = mimo_comm_dup(comm, &own);
    if (rc) {
        mimo_spec_defaults(spec);
        return rc;
    }
    rc = eval_on(ckpt, data, own, spec, st);
    mimo_release(&(mimo_held){.comm = &own}, mimo_failed_alone(own, rc));
    return rc;
}

static int write_predictions(const char *out, const mimo_graph *g,
                             mimo_real *const *outs, size_t n)
{
    mimo_atomic a;
    int rc = mimo_mkdirs_for(out);
    if (rc || (rc = mimo_atomic_begin(&a, out)))
        return rc;
    /* built in memory, written with one checked write (as checkpoints) */
    size_t est = 0;
    for (int h = 0; h < mimo_graph_n_heads(g); h++)
        est += n * (size_t)mimo_graph_head_units(g, h) * sizeof(float);
    mimo_h5_image img;
    hid_t f = mimo_h5_mem_create(out, est + (1u << 16), &img);
    if (f < 0) {
        mimo_atomic_abort(&a);
        return (int)f;
    }
    for (int h = 0; h < mimo_graph_n_heads(g) && !rc; h++)
        rc = mimo_h5_write_real(f, out, mimo_graph_head_spec(g, h)->name, outs[h], n,
                                (size_t)mimo_graph_head_units(g, h));
    int closed = mimo_h5_mem_close(f, out, &img);
    if (!rc)
        rc = closed;
    if (!rc)
        rc = mimo_atomic_write(&a, img.buf, img.len);
    free(img.buf);
    if (!rc)
        rc = mimo_atomic_commit(&a, NULL);
    if (rc)
        mimo_atomic_abort(&a);
    return rc;
}

/* Each rank filled its own rows (zeros elsewhere): summing onto rank 0
 * assembles the whole array exactly. */
static int collect(MPI_Comm comm, mimo_real *buf, size_t len)
{
    int rank;
    MIMO_MPI(MPI_Comm_rank(comm, &rank));
    for (size_t s = 0; s < len; s += INT_MAX) {
        int c = (int)(len - s < INT_MAX ? len - s : INT_MAX);
        MIMO_MPI(MPI_Reduce(rank == 0 ? MPI_IN_PLACE : buf + s, buf + s, c,
                            MIMO_MPI_REAL, MPI_SUM, 0, comm));
    }
    return 0;
}

static int predict_on(const char *ckpt, const char *data, MPI_Comm comm,
                      const char *out)
{
    mimo_spec spec;
    mimo_model *m = NULL;
    mimo_data *d = NULL;
    mimo_real **outs = NULL;
    /* the output is never one of the inputs (same device and inode, through
     * links too): the atomic rename would replace it, silently */
    int rank = 0, rc = mimo_check_not_input(out, (const char *const[]){ckpt, data}, 2);
    if (!rc)
        rc = load_for_inference(ckpt, comm, &spec, &m);
    else
        mimo_spec_defaults(&spec);
    if (comm != MPI_COMM_NULL && !rc)
        rc = MPI_Comm_rank(comm, &rank) == MPI_SUCCESS ? 0
             : mimo_error(MIMO_EMPI, "MPI_Comm_rank failed");
    if (!(rc = agree_on(comm, rc)))
        rc = open_data(ckpt, data, mimo_model_graph(m), MIMO_DATA_INPUTS, comm, &d);
    const mimo_graph *g = m ? mimo_model_graph(m) : NULL;
    int nh = g ? mimo_graph_n_heads(g) : 0;
    size_t rows = d ? mimo_data_rows(d) : 0;
    if (!rc && !(outs = calloc((size_t)nh + 1, sizeof *outs)))
        rc = mimo_error(MIMO_ENOMEM, "out of memory for predictions");
    for (int h = 0; h < nh && !rc; h++)
        if (!(outs[h] = calloc(rows * (size_t)mimo_graph_head_units(g, h) + 1,
                               sizeof(mimo_real))))
            rc = mimo_error(MIMO_ENOMEM, "out of memory for predictions");
    if (!rc) {
        mimo_source s = mimo_data_source(d);
        rc = mimo_model_predict(m, &s, outs);
    }
    for (int h = 0; h < nh && !rc && comm != MPI_COMM_NULL; h++)
        rc = collect(comm, outs[h], rows * (size_t)mimo_graph_head_units(g, h));
    if (!rc && rank == 0)
        rc = write_predictions(out, g, outs, rows);
    for (int h = 0; outs && h < nh; h++)
        free(outs[h]);
    free(outs);
    mimo_release(&(mimo_held){.data = {&d}}, mimo_failed_alone(comm, rc));
    mimo_model_free(&m);
    mimo_spec_free(&spec);
    return rc;
}

int mimo_predict_file(const char *ckpt, const char *data, MPI_Comm comm,
                      const char *out)
{
    MPI_Comm own;
    int rc = mimo_comm_dup(comm, &own);
    if (rc)
        return rc;
    rc = predict_on(ckpt, data, own, out);
    mimo_release(&(mimo_held){.comm = &own}, mimo_failed_alone(own, rc));
    return rc;
}
