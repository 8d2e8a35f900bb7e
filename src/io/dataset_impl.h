/* dataset_impl.h — what the trainer tells the dataset layer besides the
 * public API: the release of a file by a rank that failed alone, the
 * wait for the reader thread, the flag a signal sets, so that a long scan of a file
 * (NaN/Inf, labels, ranges: minutes on a huge file) stops within a chunk
 * of rows when a stop is asked for; and what identifies a file's data,
 * which a checkpoint keeps so that a resume notices a rewritten file. */
#ifndef MIMO_IO_DATASET_IMPL_H
#define MIMO_IO_DATASET_IMPL_H

#include <signal.h>

#include "mimo/dataset.h"
#include "mimo/model.h"

/* While *stop is nonzero, mimo_data_open's scans end with MIMO_EINVAL
 * ("stopped while checking"); NULL: never. Process-wide, like a signal
 * handler's flag; set before opening, cleared after. */
void mimo_data_stop_flag(volatile sig_atomic_t *stop);

/* What identifies the file d was opened from: fp[0] its size in bytes,
 * fp[1] its mtime (seconds), fp[2] a CRC-32 of its datasets' names and
 * shapes and of 17 rows of each, spread over the file. */
void mimo_data_fingerprint(const mimo_data *d, double fp[3]);

/* Frees d after an error on this rank alone: an MPI-IO file is not closed
 * (that is collective and the other ranks are elsewhere); the job is
 * expected to end with MPI_Abort. Not collective. */
void mimo_data_abandon(mimo_data **d);

/* Waits for the reader thread to finish a prefetch: call before any other
 * HDF5 work (e.g. writing a checkpoint) while the file is streaming. */
void mimo_data_wait(mimo_data *d);
/* mimo_data_open of a file held in memory (buf, len bytes: HDF5 copies
 * them), name standing for it in messages: a raw CSV converted by
 * mimo_tab_raw. Each rank opens its own copy (no MPI-IO); with comm,
 * collective as mimo_data_open. */
int mimo_data_open_image(const char *name, const void *buf, size_t len,
                         const mimo_graph *g, int what, MPI_Comm comm,
                         mimo_data **out);

/* adapt: from_data (io/adapt.c): sets the `mean` and `variance` state
 * tensors of every node whose kind's from_data says so from the file at
 * path's /preprocessing/<the input it reads>/mean and variance, or, where
 * the file has no /preprocessing/<input>, computes them over src's rows
 * (the training rows of that file); the `bin_boundaries` of every node
 * whose from_data is MIMO_ADAPT_QUANTILES: the quantiles of its input's
 * values over src's rows, always computed; *count the nodes set,
 * *computed those of them computed. An error names the file, the object
 * and the layer. */
int mimo_data_adapt(const char *path, mimo_model *m, const mimo_source *src,
                    int *count, int *computed);

#endif
