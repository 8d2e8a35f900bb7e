/* dsfile.h — writing a dataset file that mimo trains from (the layout
 * DESIGN.md and the README describe: one dataset per model input and head
 * target at the root, all sharing the first dimension N), atomically, and
 * reading one dataset of such a file back. `mimo gen` and `mimo import`
 * write through it; so can a user's own converter. */
#ifndef MIMO_DSFILE_H
#define MIMO_DSFILE_H

#include "mimo/api.h"

#include <stddef.h>
#include <stdint.h>

#include "mimo/real.h"
#include "mimo/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A dataset file being written. It lives at PATH.tmp until
 * mimo_dsfile_commit() flushes it and renames it onto PATH, so a crash or
 * an error never leaves a half-written file under the real name. */
typedef struct mimo_dsfile mimo_dsfile;

/* Creates PATH's temporary (the atomic writer's). Returns 0 and *out, or
 * MIMO_EIO naming the path. */
MIMO_API int mimo_dsfile_create(const char *path, mimo_dsfile **out);
/* A float32 dataset (rows, cols) from data (rows, cols); cols 0 writes a
 * rank-1 (rows,) dataset from rows values. */
MIMO_API int mimo_dsfile_write_real(mimo_dsfile *f, const char *name,
                           const mimo_real *data, size_t rows, size_t cols);
/* A float32 dataset (rows, row...) from data: rows samples of shape row
 * (1 to 3 axes), e.g. images (N, 28, 28, 1). */
MIMO_API int mimo_dsfile_write_rows(mimo_dsfile *f, const char *name,
                           const mimo_real *data, size_t rows, const mimo_shape *row);
/* An int32 (rows,) dataset of class labels. */
MIMO_API int mimo_dsfile_write_int(mimo_dsfile *f, const char *name,
                          const int32_t *data, size_t rows);
/* An int32 (rows, cols) dataset: integer ids of an input of shape (cols),
 * e.g. bags of ids for embedding_bag, 0 the padding. */
MIMO_API int mimo_dsfile_write_ints(mimo_dsfile *f, const char *name,
                                    const int32_t *data, size_t rows, size_t cols);
/* A string attribute on the file's root (provenance, e.g. "source"). */
MIMO_API int mimo_dsfile_attr_str(mimo_dsfile *f, const char *name, const char *v);
/* Flushes, closes and renames onto PATH; frees *f and sets it to NULL,
 * also on failure (then PATH.tmp is removed and PATH left untouched). */
MIMO_API int mimo_dsfile_commit(mimo_dsfile **f);
/* Closes and removes PATH.tmp; frees *f, sets it to NULL. NULL is fine. */
MIMO_API void mimo_dsfile_abort(mimo_dsfile **f);

/* Reads dataset `name` of the file at `path` whole, converted to double:
 * *rows x max(*cols, 1) values in *data (malloc'd; free it). *cols is the
 * product of the axes after the first, 0 for a rank-1 dataset; *is_int (may be NULL) tells an integer dataset. For
 * checking generated and imported files; training reads with dataset.c. */
MIMO_API int mimo_dsfile_read(const char *path, const char *name, size_t *rows,
                     size_t *cols, int *is_int, double **data);

#ifdef __cplusplus
}
#endif
#endif
