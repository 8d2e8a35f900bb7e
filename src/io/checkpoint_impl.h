/* checkpoint_impl.h — a checkpoint save in two halves, for the run
 * directory's background writer (train/rundir.c): building the file needs
 * HDF5, which is not thread-safe here, so it runs on the caller's thread
 * (in memory, fast); writing the finished bytes needs no HDF5 and may run
 * on another thread. Not exported. */
#ifndef MIMO_IO_CHECKPOINT_IMPL_H
#define MIMO_IO_CHECKPOINT_IMPL_H

#include <stddef.h>

#include "mimo/checkpoint.h"

/* About how many bytes a checkpoint of m takes (and its image in memory). */
size_t mimo_checkpoint_estimate(mimo_model *m);

/* Builds the checkpoint file for path in memory: *buf (malloc'd, the
 * caller frees it) of *len bytes. A checkpoint larger than half the
 * available memory is written to path at once instead (atomically, after
 * a free-space check), and *buf is NULL. */
int mimo_checkpoint_build(const char *path, mimo_model *m, const mimo_ckpt_state *st,
                          const mimo_real *best, void **buf, size_t *len);

/* Writes buf as path through the atomic writer (tmp, write, fsync,
 * mimo_checkpoint_fault_hook, rename, directory fsync). No HDF5: any
 * thread may call it. */
int mimo_checkpoint_write(const char *path, const void *buf, size_t len);

#endif
