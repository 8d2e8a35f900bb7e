/* h5_impl.h — checked HDF5 helpers shared by dataset.c, checkpoint.c and
 * the generators/importers. Every call's failure becomes a mimo_error
 * naming the file and the object. Not installed. */
#ifndef MIMO_H5_IMPL_H
#define MIMO_H5_IMPL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "mimo/real.h"
#include "mimo/spec.h"

#ifdef MIMO_REAL_DOUBLE
#define MIMO_H5_REAL H5T_NATIVE_DOUBLE
#else
#define MIMO_H5_REAL H5T_NATIVE_FLOAT
#endif

/* Turns off HDF5's own error printing (we report errors ourselves). */
void mimo_h5_quiet(void);

/* HDF5 is not built thread-safe here: the threads that call it while
 * others run (the dataset reader, the checkpoint writer) hold this
 * process-wide lock around their calls. */
void mimo_h5_lock(void);
void mimo_h5_unlock(void);

/* Every HDF5 call that can fail is checked: a negative herr_t or hid_t
 * becomes one mimo_error naming the file, the object and the HDF5
 * function, with the innermost message of HDF5's error stack (e.g. the
 * system's "No space left on device"). MIMO_H5_TRY runs call only while
 * *rc is 0 and keeps its failure in *rc; MIMO_H5_KEEP always runs it
 * (closing what is open) and keeps the first failure. */
int mimo_h5_fail(const char *call, const char *path, const char *obj);

#define MIMO_H5_TRY(rc, call, path, obj)                                     \
    do {                                                                    \
        if (!*(rc) && (call) < 0)                                           \
            *(rc) = mimo_h5_fail(#call, path, obj);                         \
    } while (0)

#define MIMO_H5_KEEP(rc, call, path, obj)                                    \
    do {                                                                    \
        if ((call) < 0 && !*(rc))                                           \
            *(rc) = mimo_h5_fail(#call, path, obj);                         \
    } while (0)

/* Opens an existing file read-only. Distinguishes a missing file, a file
 * that is not HDF5, and one HDF5 cannot open (e.g. truncated). fapl may be
 * H5P_DEFAULT. Returns the file id or a negative MIMO_E* code. */
hid_t mimo_h5_open_read(const char *path, hid_t fapl);

/* Shape of numeric dataset `name` in file f: rank (1 to MIMO_SAMPLE_RANK
 * + 1 accepted: (N,), (N, features), (N, d1, d2[, d3])), rows, cols (the
 * product of the axes after the first; 1 for rank 1), and those axes in
 * *row (may be NULL; rank 0 for a rank-1 dataset). Returns 0, or an error
 * naming path and dataset. */
int mimo_h5_shape(hid_t f, const char *path, const char *name, int *rank,
                  size_t *rows, size_t *cols, mimo_shape *row);

/* Whether every value of dataset `name` is really stored: external raw
 * files must hold all the bytes the dataset needs (a short one would read
 * as zeros), and chunks never written are an error unless the dataset has
 * a fill value its writer chose (then missing rows mean that value). */
int mimo_h5_check_storage(hid_t f, const char *path, const char *name);

/* Whether dataset `name` holds integers (0 if it cannot be opened). */
int mimo_h5_is_integer(hid_t f, const char *name);
/* Whether it holds unsigned integers of 64 bits: values above 2^63 - 1
 * that int64 cannot hold (HDF5 would clip them). */
int mimo_h5_is_u64(hid_t f, const char *name);

/* Reads rows [r0, r0 + n) of a numeric dataset of any rank mimo_h5_shape
 * accepts into dst (n, cols) as mimo_real, in the file's memory order,
 * converting other numeric types; cols must be the product of its axes
 * after the first. */
int mimo_h5_read_rows(hid_t f, const char *path, const char *name, size_t r0,
                      size_t n, size_t cols, mimo_real *dst);
/* The same into memory of HDF5 type `type` (H5T_NATIVE_INT64: integer
 * ids read exactly). */
int mimo_h5_read_rows_as(hid_t f, const char *path, const char *name, size_t r0,
                         size_t n, size_t cols, hid_t type, void *dst);

/* Writes a float32 dataset (rows, cols) (rank 1 when cols == 0) at `name`
 * (intermediate groups created). data is (rows, max(cols, 1)). */
int mimo_h5_write_real(hid_t loc, const char *path, const char *name,
                       const mimo_real *data, size_t rows, size_t cols);

/* Writes a float32 dataset (rows, row...) from data: rows samples of the
 * shape row (rank 1 to MIMO_SAMPLE_RANK), e.g. images (N, 28, 28, 1). */
int mimo_h5_write_rows(hid_t loc, const char *path, const char *name,
                       const mimo_real *data, size_t rows, const mimo_shape *row);

/* A float32 dataset of the given shape (a parameter tensor), its shape
 * (rank 1 to MIMO_MAX_RANK, numeric), and all of it read as mimo_real.
 * Tensors are written chunked with HDF5's Fletcher32 checksum filter, which
 * HDF5 itself verifies on every read (mimo's, h5py's, h5dump's): a damaged
 * tensor fails to read, with an error naming it. */
int mimo_h5_write_tensor(hid_t loc, const char *path, const char *name,
                         const mimo_real *data, const mimo_shape *shape);
int mimo_h5_tensor_shape(hid_t f, const char *path, const char *name,
                         mimo_shape *shape);
/* The bytes a tensor of this shape takes in the file (chunks, checksums). */
double mimo_h5_tensor_stored_bytes(const mimo_shape *shape);
int mimo_h5_read_all(hid_t f, const char *path, const char *name, mimo_real *dst);

/* Writes a rank-1 int32 dataset (class labels). */
/* A 1-D float64 dataset of n values; reading allocates *v (free it). */
int mimo_h5_write_f64(hid_t loc, const char *path, const char *name,
                      const double *v, size_t n);
int mimo_h5_read_f64(hid_t loc, const char *path, const char *name, double **v,
                     size_t *n);
int mimo_h5_write_int(hid_t loc, const char *path, const char *name,
                      const int32_t *data, size_t rows);
/* An int32 (rows, cols) dataset (cols 0: (rows,)). */
int mimo_h5_write_ints(hid_t loc, const char *path, const char *name,
                       const int32_t *data, size_t rows, size_t cols);

/* Scalar attributes on an object (attribute replaced if present). */
int mimo_h5_attr_write_i64(hid_t obj, const char *path, const char *name,
                           int64_t v);
int mimo_h5_attr_write_str(hid_t obj, const char *path, const char *name,
                           const char *v);
int mimo_h5_attr_read_i64(hid_t obj, const char *path, const char *name,
                          int64_t *v);
int mimo_h5_attr_write_f64(hid_t obj, const char *path, const char *name,
                           double v);
int mimo_h5_attr_read_f64(hid_t obj, const char *path, const char *name,
                          double *v);
/* Reads a string attribute into a malloc'd string (*v; free it). */
int mimo_h5_attr_read_str(hid_t obj, const char *path, const char *name,
                          char **v);

/* A whole-text string dataset (e.g. /config). */
int mimo_h5_write_text(hid_t loc, const char *path, const char *name,
                       const char *text);
int mimo_h5_read_text(hid_t loc, const char *path, const char *name,
                      char **text);

/* Files built whole in memory (HDF5's core driver, no backing store), so
 * that HDF5 never meets a full disk: mimo_h5_mem_create makes one (about
 * `estimate` bytes; path names it in messages), mimo_h5_mem_close closes
 * it — on every path, nothing of it left open — and on success hands its
 * bytes to *img (free() them), which the caller writes itself (e.g.
 * mimo_write_file). */
typedef struct {
    unsigned char *buf; /* the file's bytes (malloc'd, or keep) */
    size_t len, cap;    /* its length, and the bytes allocated for it */
    int closing;        /* inside H5Fclose: keep the buffer HDF5 frees */
    void *keep;         /* mimo_h5_mem_create_in: a buffer of the caller's */
    size_t keep_cap, size; /* its size; the driver's buffer's size */
    int keep_busy;      /* the driver holds keep */
} mimo_h5_image;
hid_t mimo_h5_mem_create(const char *path, size_t estimate, mimo_h5_image *img);
/* The same, the core driver taking keep (keep_cap bytes, not freed here)
 * for the file when it fits: a buffer kept from an earlier file, whose
 * pages are already there. img->buf may then be keep (never free it). */
hid_t mimo_h5_mem_create_in(const char *path, size_t estimate, void *keep,
                            size_t keep_cap, mimo_h5_image *img);
int mimo_h5_mem_close(hid_t f, const char *path, mimo_h5_image *img);

/* Writes the checkpoint's state_crc32 (checkpoint.c) for what f holds now:
 * the attributes of / and /optimizer and /config. Also for tests that
 * craft hostile files which must get past the checksum. */
int mimo_checkpoint_seal(hid_t f, const char *path);

/* Whether link `name` (a path like "a/b") exists under loc. */
int mimo_h5_exists(hid_t loc, const char *name);

#endif
