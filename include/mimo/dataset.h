/* dataset.h — HDF5 dataset files bound to a compiled graph: validated on
 * open (names, shapes, shared N, NaN/Inf, class labels), then read by rows.
 * Small files are loaded whole; larger ones are streamed by hyperslab, the
 * next batch prefetched by a reader thread while the current one trains.
 * A mimo_source is what the model reads batches from: an HDF5 file or
 * in-memory arrays alike. */
#ifndef MIMO_DATASET_H
#define MIMO_DATASET_H

#include "mimo/api.h"

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "mimo/graph.h"
#include "mimo/real.h"
#include "mimo/source.h"
#include "mimo/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mimo_data mimo_data;

/* What mimo_data_open reads besides the inputs. */
enum {
    MIMO_DATA_INPUTS = 0,  /* inputs only (predict) */
    MIMO_DATA_TARGETS = 1, /* and every head's target, and the sample
                            * weights the file has (1 where it has none:
                            * validation, eval) */
    MIMO_DATA_TRAIN = 2    /* and every head's sample weights (training) */
};

/* Opens and validates path for graph g: every input (and, with targets,
 * every head target) present, shapes right, one N, no NaN/Inf (a head's
 * target may be NaN or its `missing` value in whole rows), labels in
 * range, binary_crossentropy targets in [0, 1], sample weights finite
 * and >= 0; stored data only (no virtual datasets, no unwritten chunks
 * without a fill value, external files whole). Loads it whole when it takes at
 * most spec->data.memory_limit_mb (per rank), else streams with
 * spec->data.prefetch batches read ahead. Errors name the file and the
 * dataset.
 * With a communicator of more than one rank (collective on it): the file
 * is opened with the MPI-IO driver; every rank loads it whole (a copy
 * each), or streams it, reading only the rows of its slices and checking
 * (for NaN/Inf) only its share of the rows; a rank whose check fails
 * returns its error and the others MIMO_EPEER. comm may be MPI_COMM_NULL. */
MIMO_API int mimo_data_open(const char *path, const mimo_graph *g, int what,
                   MPI_Comm comm, mimo_data **out);
MIMO_API void mimo_data_close(mimo_data **d);

/* The source view of an open file (valid while the file is open). */
MIMO_API mimo_source mimo_data_source(mimo_data *d);
MIMO_API size_t mimo_data_rows(const mimo_data *d);
/* Whether the file is held whole in memory (else it streams). */
MIMO_API int mimo_data_in_memory(const mimo_data *d);
/* A view of rows [r0, r0 + n) (for a validation split); shares d, which
 * must outlive it; free the view with mimo_data_close. */
MIMO_API mimo_source mimo_data_range(mimo_data *d, size_t r0, size_t n,
                            mimo_data **view);

#ifdef __cplusplus
}
#endif
#endif
