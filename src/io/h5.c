/* h5.c — checked HDF5 helpers: open with clear diagnoses, read row ranges
 * with type conversion, write datasets, attributes and text. Every failure
 * becomes one mimo_error naming the file and the object.
 *
 * Part io (src/io/): files (YAML configs, HDF5 datasets and checkpoints);
 * uses core and base; MPI only for MPI-IO in dataset.c.
 */
#include "io/h5_impl.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mimo/error.h"
#include "base/fsutil.h"
#include "base/strutil.h"

void mimo_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static pthread_mutex_t h5_mu = PTHREAD_MUTEX_INITIALIZER;
void mimo_h5_lock(void) { pthread_mutex_lock(&h5_mu); }
void mimo_h5_unlock(void) { pthread_mutex_unlock(&h5_mu); }

/* The innermost (first) entry of HDF5's error stack: where it failed. */
static herr_t first_error(unsigned n, const H5E_error2_t *e, void *buf)
{
    if (n == 0)
        snprintf(buf, 256, "%s", e->desc ? e->desc : "");
    return 0;
}

int mimo_h5_fail(const char *call, const char *path, const char *obj)
{
    char fn[64], why[256] = "";
    size_t n = strcspn(call, "(");
    const char *start = call;
    for (const char *p = call; p < call + n; p++) /* "d = H5Dcreate2(" */
        if (*p == ' ' || *p == '=')
            start = p + 1;
    snprintf(fn, sizeof fn, "%.*s", (int)(call + n - start), start);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, first_error, why);
    H5Eclear2(H5E_DEFAULT);
    return mimo_error(MIMO_EIO, "%s: %s of '%s' failed%s%s", path, fn,
                      obj ? obj : "/", why[0] ? ": " : "", why);
}

hid_t mimo_h5_open_read(const char *path, hid_t fapl)
{
    mimo_h5_quiet();
    int rc = mimo_check_regular(path, NULL); /* a FIFO would block HDF5's open */
    if (rc)
        return rc;
    htri_t is = H5Fis_hdf5(path);
    if (is == 0)
        return mimo_error(MIMO_EIO, "%s: not an HDF5 file", path);
    hid_t f = is > 0 ? H5Fopen(path, H5F_ACC_RDONLY, fapl) : -1;
    if (f < 0)
        return mimo_error(MIMO_EIO, "%s: HDF5 cannot open this file (truncated "
                          "or damaged?)", path);
    return f;
}

/* ---- files built in memory ------------------------------------------------ */

/* The core driver's memory goes through these: at the file's close its
 * buffer is kept (it becomes the image) instead of freed; a caller's
 * buffer (keep) is used first when the file fits, and never freed. */
static void *img_malloc(size_t n, H5FD_file_image_op_t op, void *u)
{
    mimo_h5_image *img = u;
    (void)op;
    if (img->keep && !img->keep_busy && n <= img->keep_cap) {
        img->keep_busy = 1, img->size = img->keep_cap;
        return img->keep;
    }
    img->size = n;
    return malloc(n ? n : 1);
}

static void *img_memcpy(void *d, const void *s, size_t n, H5FD_file_image_op_t op,
                        void *u)
{
    (void)op, (void)u;
    return memcpy(d, s, n);
}

static void *img_realloc(void *p, size_t n, H5FD_file_image_op_t op, void *u)
{
    mimo_h5_image *img = u;
    if (!p) /* the core driver's first write allocates this way */
        return img_malloc(n, op, u);
    if (p == img->keep) {
        if (n <= img->keep_cap)
            return p;
        void *q = malloc(n); /* outgrown: keep stays the caller's */
        if (q) {
            memcpy(q, p, img->keep_cap);
            img->keep_busy = 0, img->size = n;
        }
        return q;
    }
    void *q = realloc(p, n ? n : 1);
    if (q)
        img->size = n;
    return q;
}

static herr_t img_free(void *p, H5FD_file_image_op_t op, void *u)
{
    mimo_h5_image *img = u;
    if (op == H5FD_FILE_IMAGE_OP_FILE_CLOSE && img->closing && !img->buf) {
        img->buf = p; /* the file's bytes: ours now */
        img->cap = img->size;
    } else if (p && p == img->keep) {
        img->keep_busy = 0;
    } else {
        free(p);
    }
    return 0;
}

static void *img_udata_copy(void *u) { return u; }
static herr_t img_udata_free(void *u)
{
    (void)u;
    return 0;
}

hid_t mimo_h5_mem_create(const char *path, size_t estimate, mimo_h5_image *img)
{
    return mimo_h5_mem_create_in(path, estimate, NULL, 0, img);
}

hid_t mimo_h5_mem_create_in(const char *path, size_t estimate, void *keep,
                            size_t keep_cap, mimo_h5_image *img)
{
    H5FD_file_image_callbacks_t cb = {img_malloc, img_memcpy, img_realloc, img_free,
                                      img_udata_copy, img_udata_free, img};
    hid_t fapl = -1, f = -1;
    int rc = 0;
    memset(img, 0, sizeof *img);
    img->keep = keep, img->keep_cap = keep ? keep_cap : 0;
    mimo_h5_quiet();
    size_t inc = estimate < (1u << 20) ? (1u << 20) : estimate + (estimate >> 4);
    MIMO_H5_TRY(&rc, fapl = H5Pcreate(H5P_FILE_ACCESS), path, NULL);
    MIMO_H5_TRY(&rc, H5Pset_fapl_core(fapl, inc, 0), path, NULL);
    MIMO_H5_TRY(&rc, H5Pset_file_image_callbacks(fapl, &cb), path, NULL);
    /* metadata with checksums of its own, the chunk indexes included (the
     * 1.10 format: a flipped chunk address is an error, not another
     * chunk's data with a valid Fletcher32) */
    MIMO_H5_TRY(&rc, H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST),
                path, NULL);
    MIMO_H5_TRY(&rc, f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), path,
                NULL);
    if (fapl >= 0)
        H5Pclose(fapl);
    return rc ? rc : f;
}

int mimo_h5_mem_close(hid_t f, const char *path, mimo_h5_image *img)
{
    int rc = 0;
    ssize_t len = -1;
    MIMO_H5_TRY(&rc, H5Fflush(f, H5F_SCOPE_GLOBAL), path, NULL);
    MIMO_H5_TRY(&rc, len = H5Fget_file_image(f, NULL, 0), path, NULL);
    img->closing = 1;
    /* in memory, closing can only fail on a bug; keep going either way */
    if (H5Fclose(f) < 0 && !rc)
        rc = mimo_h5_fail("H5Fclose", path, NULL);
    img->closing = 0;
    if (!rc && !img->buf)
        rc = mimo_error(MIMO_EIO, "%s: HDF5 kept the file's image", path);
    if (rc) {
        if (img->buf != img->keep)
            free(img->buf);
        img->buf = NULL;
        return rc;
    }
    img->len = (size_t)len;
    return 0;
}

int mimo_h5_exists(hid_t loc, const char *name)
{
    /* walk the path one link at a time: H5Lexists fails on missing parents */
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf + (buf[0] == '/'); ; p++) {
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            if (H5Lexists(loc, buf, H5P_DEFAULT) <= 0)
                return 0;
            if (c == '\0')
                return 1;
            *p = '/';
        }
    }
}

int mimo_h5_shape(hid_t f, const char *path, const char *name, int *rank,
                  size_t *rows, size_t *cols, mimo_shape *row)
{
    if (!mimo_h5_exists(f, name))
        return mimo_error(MIMO_EINVAL, "%s: no dataset '%s'", path, name);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return mimo_error(MIMO_EIO, "%s: '%s' is not a dataset", path, name);
    hid_t s = H5Dget_space(d);
    hid_t t = H5Dget_type(d);
    hsize_t dims[H5S_MAX_RANK] = {0};
    int r = s >= 0 ? H5Sget_simple_extent_dims(s, dims, NULL) : -1;
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    if (r < 0)
        return mimo_error(MIMO_EIO, "%s: cannot read the shape of '%s'", path, name);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
        return mimo_error(MIMO_EINVAL, "%s: dataset '%s' is not numeric", path, name);
    if (r < 1 || r > MIMO_SAMPLE_RANK + 1)
        return mimo_error(MIMO_ESHAPE, "%s: dataset '%s' has rank %d, expected "
                          "(N,), (N, features) or (N, height, width, channels)",
                          path, name, r);
    size_t c = 1;
    for (int k = 1; k < r; k++) {
        if (dims[k] > (hsize_t)INT_MAX || (dims[k] && c > SIZE_MAX / dims[k]))
            return mimo_error(MIMO_ESHAPE, "%s: dataset '%s' is too large", path,
                              name);
        c *= (size_t)dims[k];
    }
    if (row) {
        row->rank = r - 1;
        for (int k = 1; k < r; k++)
            row->dim[k - 1] = (int)dims[k];
    }
    *rank = r;
    *rows = (size_t)dims[0];
    *cols = c;
    return 0;
}

/* Where an external file's relative name is read from: the access list's
 * prefix ("${ORIGIN}" is the HDF5 file's directory), else the current
 * directory (HDF5's rule). */
static void external_path(hid_t dapl, const char *path, const char *name, char *out,
                          size_t len)
{
    char prefix[2048] = "";
    if (name[0] == '/' || H5Pget_efile_prefix(dapl, prefix, sizeof prefix) <= 0 ||
        !prefix[0]) {
        snprintf(out, len, "%s", name);
        return;
    }
    if (strncmp(prefix, "${ORIGIN}", 9) == 0) {
        const char *slash = strrchr(path, '/');
        snprintf(out, len, "%.*s%s/%s", slash ? (int)(slash - path) : 1,
                 slash ? path : ".", prefix + 9, name);
    } else
        snprintf(out, len, "%s/%s", prefix, name);
}

/* External raw files: each must exist, be a regular file (a device such as
 * /dev/zero reads as anything at all) and hold the bytes the dataset takes
 * from it. need: the dataset's bytes. */
static int check_external(hid_t dcpl, hid_t dapl, int n_ext, double need,
                          const char *path, const char *name)
{
    int rc = 0;
    for (int i = 0; i < n_ext && need > 0 && !rc; i++) {
        char fname[1024] = "", full[4096];
        off_t off = 0;
        hsize_t size = 0;
        struct stat sb;
        if (H5Pget_external(dcpl, (unsigned)i, sizeof fname, fname, &off, &size) < 0)
            break;
        double part = size == H5F_UNLIMITED || (double)size > need ? need : (double)size;
        external_path(dapl, path, fname, full, sizeof full);
        if (stat(full, &sb))
            rc = mimo_error(MIMO_EIO, "%s: dataset '%s' keeps its data in the "
                            "external file %s: %s", path, name, full, strerror(errno));
        else if (!S_ISREG(sb.st_mode))
            rc = mimo_error(MIMO_EINVAL, "%s: dataset '%s' keeps its data in the "
                            "external file %s, which is not a regular file: copy "
                            "it into a regular dataset (h5repack -l CONTI)",
                            path, name, full);
        else if ((double)sb.st_size < (double)off + part)
            rc = mimo_error(MIMO_EINVAL, "%s: dataset '%s' keeps its data in the "
                            "external file %s, which holds %.0f of the %.0f bytes it "
                            "needs from offset %lld: the missing part would read as "
                            "zeros", path, name, full,
                            (double)sb.st_size > (double)off ? (double)sb.st_size - (double)off : 0,
                            part, (long long)off);
        need -= part;
    }
    return rc;
}

/* Chunks written and chunks the extent needs (ceil of each axis over the
 * chunk's): H5Dget_space_status compares bytes, so a compressed dataset
 * written whole would look partly written. -1 in *have when unknown.
 * (HDF5 1.10 takes the dataset's own space there, not H5S_ALL.) */
static void count_chunks(hid_t d, hid_t dcpl, hid_t s, double *have, double *need)
{
    hsize_t dims[H5S_MAX_RANK] = {0}, chunk[H5S_MAX_RANK] = {0}, n = 0;
    int r = H5Sget_simple_extent_dims(s, dims, NULL);
    int cr = H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk);
    *need = 1;
    for (int k = 0; k < r; k++)
        *need *= k < cr && chunk[k] ? (double)((dims[k] + chunk[k] - 1) / chunk[k]) : 1;
    *have = H5Dget_num_chunks(d, s, &n) < 0 ? -1 : (double)n;
}

/* Written storage: 0 when every value is stored, else an error naming
 * how much would read as the fill value (zeros unless the writer chose
 * one: then unwritten chunks mean that value, but a dataset of nothing
 * but its fill value is refused — it holds no data at all). */
static int check_written(hid_t d, hid_t dcpl, hid_t s, const char *path,
                         const char *name)
{
    H5D_fill_value_t fv = H5D_FILL_VALUE_DEFAULT;
    int user_fill = H5Pfill_value_defined(dcpl, &fv) >= 0 &&
                    fv == H5D_FILL_VALUE_USER_DEFINED;
    double have = 1, need = 1;
    if (H5Pget_layout(dcpl) == H5D_CHUNKED)
        count_chunks(d, dcpl, s, &have, &need);
    else { /* contiguous (no filters there) or compact: bytes are exact */
        H5D_space_status_t st = H5D_SPACE_STATUS_ALLOCATED;
        if (H5Dget_space_status(d, &st) >= 0)
            have = st == H5D_SPACE_STATUS_NOT_ALLOCATED ? 0
                   : st == H5D_SPACE_STATUS_ALLOCATED ? 1 : 0.5;
    }
    if (have < 0 || have >= need || (have > 0 && user_fill))
        return 0;
    if (have == 0 && user_fill)
        return mimo_error(MIMO_EINVAL, "%s: dataset '%s' was never written: every "
                          "value is its fill value, it holds no data", path, name);
    if (have == 0)
        return mimo_error(MIMO_EINVAL, "%s: dataset '%s' was never written (all of "
                          "its data would read as zeros)", path, name);
    char chunks[96] = "";
    if (H5Pget_layout(dcpl) == H5D_CHUNKED)
        snprintf(chunks, sizeof chunks, ": %.0f of its %.0f chunks", have, need);
    return mimo_error(MIMO_EINVAL, "%s: dataset '%s' was only partly written%s (some "
                      "of its data would read as zeros): write all of it, or give "
                      "it a fill value (h5py: fillvalue=) if that is what unwritten "
                      "rows mean", path, name, chunks);
}

int mimo_h5_check_storage(hid_t f, const char *path, const char *name)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return mimo_error(MIMO_EIO, "%s: cannot open dataset '%s'", path, name);
    hid_t dcpl = H5Dget_create_plist(d), dapl = H5Dget_access_plist(d);
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    double need = (double)H5Tget_size(t) * (double)H5Sget_simple_extent_npoints(s);
    int n_ext = dcpl < 0 ? 0 : H5Pget_external_count(dcpl), rc = 0;
    if (dcpl < 0 || s < 0)
        rc = mimo_error(MIMO_EIO, "%s: cannot read how dataset '%s' is stored",
                        path, name);
    else if (H5Pget_layout(dcpl) == H5D_VIRTUAL)
        /* its sources may be missing, partial or itself (HDF5 then recurses
         * until the stack overflows): what they map is not checked here */
        rc = mimo_error(MIMO_EINVAL, "%s: dataset '%s' is a virtual dataset (its "
                        "values live in other datasets or files, which mimo does "
                        "not check): copy it into a regular dataset, e.g. "
                        "h5repack -l %s:CONTI %s copy.h5", path, name, name, path);
    else if (n_ext > 0)
        rc = check_external(dcpl, dapl, n_ext, need, path, name);
    else if (need > 0)
        rc = check_written(d, dcpl, s, path, name);
    H5Eclear2(H5E_DEFAULT);
    if (s >= 0)
        H5Sclose(s);
    if (t >= 0)
        H5Tclose(t);
    if (dapl >= 0)
        H5Pclose(dapl);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    H5Dclose(d);
    return rc;
}

int mimo_h5_is_integer(hid_t f, const char *name)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t t = d >= 0 ? H5Dget_type(d) : -1;
    int is = t >= 0 && H5Tget_class(t) == H5T_INTEGER;
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    return is;
}

int mimo_h5_is_u64(hid_t f, const char *name)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t t = d >= 0 ? H5Dget_type(d) : -1;
    int is = t >= 0 && H5Tget_class(t) == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_NONE &&
             H5Tget_size(t) >= 8;
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    return is;
}

int mimo_h5_read_rows(hid_t f, const char *path, const char *name, size_t r0,
                      size_t n, size_t cols, mimo_real *dst)
{
    return mimo_h5_read_rows_as(f, path, name, r0, n, cols, MIMO_H5_REAL, dst);
}

int mimo_h5_read_rows_as(hid_t f, const char *path, const char *name, size_t r0,
                         size_t n, size_t cols, hid_t type, void *dst)
{
    if (n == 0)
        return 0;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return mimo_error(MIMO_EIO, "%s: cannot open dataset '%s'", path, name);
    hid_t fs = H5Dget_space(d), ms = -1;
    hsize_t start[H5S_MAX_RANK] = {0}, count[H5S_MAX_RANK] = {0};
    int rank = fs < 0 ? -1 : H5Sget_simple_extent_dims(fs, count, NULL);
    size_t c = 1;
    for (int k = 1; k < rank; k++)
        c *= (size_t)count[k];
    herr_t st = rank < 1 || c != cols ? -1 : 0; /* the whole rows r0.. */
    start[0] = r0, count[0] = n;
    if (st >= 0 && (ms = H5Screate_simple(rank, count, NULL)) < 0)
        st = -1;
    if (st >= 0)
        st = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    if (st >= 0)
        st = H5Dread(d, type, ms, fs, H5P_DEFAULT, dst);
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    H5Dclose(d);
    if (st < 0)
        return mimo_error(MIMO_EIO, "%s: reading rows %zu..%zu of '%s' failed "
                          "(truncated or damaged file?)", path, r0, r0 + n, name);
    return 0;
}

/* Writes a new dataset `name` (replacing one there), with intermediate
 * groups and dataset creation properties dcpl (H5P_DEFAULT: contiguous);
 * every id it opens is closed on every path. */
static int write_data(hid_t loc, const char *path, const char *name,
                      hid_t ftype, hid_t mtype, const void *data, int rank,
                      const hsize_t *dims, hid_t dcpl)
{
    hid_t lcpl = -1, s = -1, d = -1;
    int rc = 0;
    if (mimo_h5_exists(loc, name))
        MIMO_H5_TRY(&rc, H5Ldelete(loc, name, H5P_DEFAULT), path, name);
    MIMO_H5_TRY(&rc, lcpl = H5Pcreate(H5P_LINK_CREATE), path, name);
    MIMO_H5_TRY(&rc, H5Pset_create_intermediate_group(lcpl, 1), path, name);
    MIMO_H5_TRY(&rc, s = H5Screate_simple(rank, dims, NULL), path, name);
    MIMO_H5_TRY(&rc, d = H5Dcreate2(loc, name, ftype, s, lcpl, dcpl, H5P_DEFAULT),
                path, name);
    MIMO_H5_TRY(&rc, H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
                name);
    if (d >= 0)
        MIMO_H5_KEEP(&rc, H5Dclose(d), path, name);
    if (s >= 0)
        MIMO_H5_KEEP(&rc, H5Sclose(s), path, name);
    if (lcpl >= 0)
        MIMO_H5_KEEP(&rc, H5Pclose(lcpl), path, name);
    return rc;
}

int mimo_h5_write_real(hid_t loc, const char *path, const char *name,
                       const mimo_real *data, size_t rows, size_t cols)
{
    hsize_t dims[2] = {rows, cols};
    return write_data(loc, path, name, H5T_IEEE_F32LE, MIMO_H5_REAL, data,
                      cols ? 2 : 1, dims, H5P_DEFAULT);
}

#define CHUNK_BYTES (16u << 20) /* at most this much of a tensor per chunk */

/* Chunks of at most CHUNK_BYTES float32s, whole trailing axes first. */
static void chunk_dims(int rank, const hsize_t *dims, hsize_t *chunk)
{
    hsize_t inner = 4; /* bytes of one element of the axes after k */
    for (int k = rank - 1; k >= 0; k--) {
        hsize_t fit = inner >= CHUNK_BYTES ? 1 : CHUNK_BYTES / inner;
        chunk[k] = dims[k] < fit ? dims[k] : fit;
        inner = inner > CHUNK_BYTES ? inner : inner * chunk[k];
    }
}

/* What mimo_h5_write_tensor stores of a tensor: its chunks, whole (edge
 * chunks are allocated in full), each with Fletcher32's 4 bytes. */
double mimo_h5_tensor_stored_bytes(const mimo_shape *shape)
{
    hsize_t dims[MIMO_MAX_RANK], chunk[MIMO_MAX_RANK];
    double chunks = 1, per = 4;
    for (int k = 0; k < shape->rank; k++)
        if ((dims[k] = (hsize_t)shape->dim[k]) == 0)
            return 0;
    chunk_dims(shape->rank, dims, chunk);
    for (int k = 0; k < shape->rank; k++) {
        chunks *= (double)((dims[k] + chunk[k] - 1) / chunk[k]);
        per *= (double)chunk[k];
    }
    return chunks * (per + 4);
}

int mimo_h5_write_rows(hid_t loc, const char *path, const char *name,
                       const mimo_real *data, size_t rows, const mimo_shape *row)
{
    hsize_t dims[MIMO_SAMPLE_RANK + 1] = {rows};
    for (int k = 0; k < row->rank && k < MIMO_SAMPLE_RANK; k++)
        dims[k + 1] = (hsize_t)row->dim[k];
    return write_data(loc, path, name, H5T_IEEE_F32LE, MIMO_H5_REAL, data,
                      1 + (row->rank < MIMO_SAMPLE_RANK ? row->rank : MIMO_SAMPLE_RANK),
                      dims, H5P_DEFAULT);
}

int mimo_h5_write_tensor(hid_t loc, const char *path, const char *name,
                         const mimo_real *data, const mimo_shape *shape)
{
    hsize_t dims[MIMO_MAX_RANK], chunk[MIMO_MAX_RANK];
    int empty = 0, rc = 0;
    for (int k = 0; k < shape->rank; k++)
        dims[k] = (hsize_t)shape->dim[k], empty |= shape->dim[k] == 0;
    if (empty) /* no values, nothing to checksum (chunks cannot be empty) */
        return write_data(loc, path, name, H5T_IEEE_F32LE, MIMO_H5_REAL, data,
                          shape->rank, dims, H5P_DEFAULT);
    chunk_dims(shape->rank, dims, chunk);
    hid_t dcpl = -1;
    MIMO_H5_TRY(&rc, dcpl = H5Pcreate(H5P_DATASET_CREATE), path, name);
    MIMO_H5_TRY(&rc, H5Pset_chunk(dcpl, shape->rank, chunk), path, name);
    MIMO_H5_TRY(&rc, H5Pset_fletcher32(dcpl), path, name);
    if (!rc)
        rc = write_data(loc, path, name, H5T_IEEE_F32LE, MIMO_H5_REAL, data,
                        shape->rank, dims, dcpl);
    if (dcpl >= 0)
        MIMO_H5_KEEP(&rc, H5Pclose(dcpl), path, name);
    return rc;
}

int mimo_h5_tensor_shape(hid_t f, const char *path, const char *name,
                         mimo_shape *shape)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return mimo_error(MIMO_EIO, "%s: '%s' is not a dataset", path, name);
    hid_t s = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t dims[H5S_MAX_RANK] = {0};
    int r = s >= 0 ? H5Sget_simple_extent_dims(s, dims, NULL) : -1;
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    H5Dclose(d);
    if (r < 0)
        return mimo_error(MIMO_EIO, "%s: cannot read the shape of '%s'", path, name);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
        return mimo_error(MIMO_EINVAL, "%s: dataset '%s' is not numeric", path, name);
    if (r < 1 || r > MIMO_MAX_RANK)
        return mimo_error(MIMO_ESHAPE, "%s: dataset '%s' has rank %d, expected "
                          "1 to %d", path, name, r, MIMO_MAX_RANK);
    shape->rank = r;
    for (int k = 0; k < r; k++) {
        if (dims[k] > (hsize_t)INT_MAX)
            return mimo_error(MIMO_ESHAPE, "%s: dataset '%s' is too large", path,
                              name);
        shape->dim[k] = (int)dims[k];
    }
    return 0;
}

/* Every entry of HDF5's error stack: the innermost one's text in buf, and
 * buf[255] set when any entry is a failed checksum. */
static herr_t any_error(unsigned n, const H5E_error2_t *e, void *buf)
{
    char *b = buf;
    (void)n;
    if (e->desc && *e->desc) {
        snprintf(b, 255, "%s", e->desc);
        if (strstr(e->desc, "Fletcher32") || strstr(e->desc, "checksum"))
            b[255] = 1;
    }
    return 0;
}

int mimo_h5_read_all(hid_t f, const char *path, const char *name, mimo_real *dst)
{
    char why[256] = "";
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    herr_t st = d < 0 ? -1 : H5Dread(d, MIMO_H5_REAL, H5S_ALL, H5S_ALL,
                                     H5P_DEFAULT, dst);
    if (st < 0)
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, any_error, why);
    H5Eclear2(H5E_DEFAULT);
    if (d >= 0)
        H5Dclose(d);
    if (st < 0 && why[255])
        return mimo_error(MIMO_EIO, "%s: tensor '%s' fails its checksum: the file "
                          "is damaged (%s)", path, name, why);
    if (st < 0)
        return mimo_error(MIMO_EIO, "%s: reading '%s' failed (truncated or "
                          "damaged file?)%s%s", path, name, why[0] ? ": " : "", why);
    return 0;
}

/* Chunked with Fletcher32, as the tensors: HDF5 checks it on every read. */
int mimo_h5_write_f64(hid_t loc, const char *path, const char *name,
                      const double *v, size_t n)
{
    hsize_t dims[1] = {n}, chunk[1] = {n < CHUNK_BYTES / 8 ? n : CHUNK_BYTES / 8};
    hid_t dcpl = -1;
    int rc = 0;
    if (n == 0)
        return write_data(loc, path, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v, 1,
                          dims, H5P_DEFAULT);
    MIMO_H5_TRY(&rc, dcpl = H5Pcreate(H5P_DATASET_CREATE), path, name);
    MIMO_H5_TRY(&rc, H5Pset_chunk(dcpl, 1, chunk), path, name);
    MIMO_H5_TRY(&rc, H5Pset_fletcher32(dcpl), path, name);
    if (!rc)
        rc = write_data(loc, path, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v, 1,
                        dims, dcpl);
    if (dcpl >= 0)
        MIMO_H5_KEEP(&rc, H5Pclose(dcpl), path, name);
    return rc;
}

int mimo_h5_read_f64(hid_t loc, const char *path, const char *name, double **v,
                     size_t *n)
{
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t s = d < 0 ? -1 : H5Dget_space(d);
    hssize_t len = s < 0 ? -1 : H5Sget_simple_extent_npoints(s);
    *v = NULL, *n = 0;
    herr_t st = len < 0 ? -1 : 0;
    if (st >= 0 && !(*v = malloc(sizeof **v * (size_t)(len ? len : 1))))
        st = -2;
    if (st >= 0 && len > 0)
        st = H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *v);
    if (s >= 0)
        H5Sclose(s);
    if (d >= 0)
        H5Dclose(d);
    if (st < 0) {
        free(*v);
        *v = NULL;
        return st == -2 ? mimo_error(MIMO_ENOMEM, "out of memory reading '%s'", name)
                        : mimo_error(MIMO_EIO, "%s: reading '%s' failed (truncated "
                                     "or damaged file?)", path, name);
    }
    *n = (size_t)len;
    return 0;
}

int mimo_h5_write_int(hid_t loc, const char *path, const char *name,
                      const int32_t *data, size_t rows)
{
    return mimo_h5_write_ints(loc, path, name, data, rows, 0);
}

int mimo_h5_write_ints(hid_t loc, const char *path, const char *name,
                       const int32_t *data, size_t rows, size_t cols)
{
    hsize_t dims[2] = {rows, cols};
    return write_data(loc, path, name, H5T_STD_I32LE, H5T_NATIVE_INT32, data,
                      cols ? 2 : 1, dims, H5P_DEFAULT);
}

/* Writes the scalar attribute `name` of file type ft from *v (in memory
 * type mt), replacing any earlier one. */
static int attr_write(hid_t obj, const char *path, const char *name, hid_t ft,
                      hid_t mt, const void *v)
{
    hid_t s = -1, a = -1;
    int rc = 0;
    if (H5Aexists(obj, name) > 0)
        MIMO_H5_TRY(&rc, H5Adelete(obj, name), path, name);
    MIMO_H5_TRY(&rc, s = H5Screate(H5S_SCALAR), path, name);
    MIMO_H5_TRY(&rc, a = H5Acreate2(obj, name, ft, s, H5P_DEFAULT, H5P_DEFAULT),
                path, name);
    MIMO_H5_TRY(&rc, H5Awrite(a, mt, v), path, name);
    if (a >= 0)
        MIMO_H5_KEEP(&rc, H5Aclose(a), path, name);
    if (s >= 0)
        MIMO_H5_KEEP(&rc, H5Sclose(s), path, name);
    return rc;
}

/* Reads the scalar attribute `name` into *v (memory type mt). */
static int attr_read(hid_t obj, const char *path, const char *name, hid_t mt,
                     void *v)
{
    if (H5Aexists(obj, name) <= 0)
        return mimo_error(MIMO_EINVAL, "%s: attribute '%s' is missing", path, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t sp = a < 0 ? -1 : H5Aget_space(a), t = a < 0 ? -1 : H5Aget_type(a);
    H5T_class_t cls = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
    /* one number: H5Aread would write every element of an array into *v */
    int one = sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1 &&
              (cls == H5T_INTEGER || cls == H5T_FLOAT);
    herr_t st = a < 0 || !one ? -1 : H5Aread(a, mt, v);
    H5Eclear2(H5E_DEFAULT);
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    if (a >= 0 && !one)
        return mimo_error(MIMO_EINVAL, "%s: attribute '%s' is not a single number",
                          path, name);
    return st < 0 ? mimo_error(MIMO_EIO, "%s: cannot read attribute '%s'", path,
                               name) : 0;
}

int mimo_h5_attr_write_i64(hid_t obj, const char *path, const char *name,
                           int64_t v)
{
    return attr_write(obj, path, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

int mimo_h5_attr_write_f64(hid_t obj, const char *path, const char *name,
                           double v)
{
    return attr_write(obj, path, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

int mimo_h5_attr_read_f64(hid_t obj, const char *path, const char *name,
                          double *v)
{
    return attr_read(obj, path, name, H5T_NATIVE_DOUBLE, v);
}

/* A UTF-8 string type (close it), or -1: variable length for reading any
 * string; fixed length, n bytes with the terminating NUL, for writing. mimo
 * writes only fixed-length strings: they live in the object header (or the
 * dataset) that holds them, under its checksum, while variable-length ones
 * live in the global heap, which has no checksum and whose object lengths
 * HDF5 trusts — one flipped bit there makes H5Aread copy past its buffer. */
static hid_t str_type(size_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, n ? n : H5T_VARIABLE) < 0 ||
                   H5Tset_cset(t, H5T_CSET_UTF8) < 0 ||
                   (n && H5Tset_strpad(t, H5T_STR_NULLTERM) < 0))) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

int mimo_h5_attr_write_str(hid_t obj, const char *path, const char *name,
                           const char *v)
{
    hid_t t = str_type(strlen(v) + 1);
    int rc = t < 0 ? mimo_h5_fail("H5Tcopy", path, name)
                   : attr_write(obj, path, name, t, t, v);
    if (t >= 0)
        MIMO_H5_KEEP(&rc, H5Tclose(t), path, name);
    return rc;
}

int mimo_h5_attr_read_i64(hid_t obj, const char *path, const char *name,
                          int64_t *v)
{
    return attr_read(obj, path, name, H5T_NATIVE_INT64, v);
}

/* Reads a string from attribute or dataset `id` of type `ft` (fixed or
 * variable length) into a malloc'd copy. */
static int read_string(hid_t id, int is_attr, char **out)
{
    hid_t ft = is_attr ? H5Aget_type(id) : H5Dget_type(id);
    herr_t st = -1;
    *out = NULL;
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING) {
        if (H5Tis_variable_str(ft) > 0) {
            hid_t t = str_type(0);
            char *s = NULL;
            st = is_attr ? H5Aread(id, t, &s) : H5Dread(id, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s);
            if (st >= 0 && s) {
                *out = mimo_strdup(s);
                H5free_memory(s);
            }
            H5Tclose(t);
        } else {
            size_t n = H5Tget_size(ft);
            char *s = calloc(n + 1, 1);
            if (s)
                st = is_attr ? H5Aread(id, ft, s) : H5Dread(id, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, s);
            *out = s;
        }
    }
    if (ft >= 0)
        H5Tclose(ft);
    if (st < 0 || !*out) {
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

int mimo_h5_attr_read_str(hid_t obj, const char *path, const char *name,
                          char **v)
{
    if (H5Aexists(obj, name) <= 0)
        return mimo_error(MIMO_EINVAL, "%s: attribute '%s' is missing", path, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    int rc = a < 0 ? -1 : read_string(a, 1, v);
    if (a >= 0)
        H5Aclose(a);
    return rc < 0 ? mimo_error(MIMO_EIO, "%s: attribute '%s' is not a readable "
                               "string", path, name) : 0;
}

int mimo_h5_write_text(hid_t loc, const char *path, const char *name,
                       const char *text)
{
    hid_t t = -1, s = -1, d = -1;
    int rc = 0;
    if (mimo_h5_exists(loc, name))
        MIMO_H5_TRY(&rc, H5Ldelete(loc, name, H5P_DEFAULT), path, name);
    MIMO_H5_TRY(&rc, t = str_type(strlen(text) + 1), path, name);
    MIMO_H5_TRY(&rc, s = H5Screate(H5S_SCALAR), path, name);
    MIMO_H5_TRY(&rc, d = H5Dcreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT,
                                    H5P_DEFAULT), path, name);
    MIMO_H5_TRY(&rc, H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, text), path, name);
    if (d >= 0)
        MIMO_H5_KEEP(&rc, H5Dclose(d), path, name);
    if (s >= 0)
        MIMO_H5_KEEP(&rc, H5Sclose(s), path, name);
    if (t >= 0)
        MIMO_H5_KEEP(&rc, H5Tclose(t), path, name);
    return rc;
}

int mimo_h5_read_text(hid_t loc, const char *path, const char *name, char **text)
{
    if (!mimo_h5_exists(loc, name))
        return mimo_error(MIMO_EINVAL, "%s: no '%s'", path, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    int rc = d < 0 ? -1 : read_string(d, 0, text);
    if (d >= 0)
        H5Dclose(d);
    return rc < 0 ? mimo_error(MIMO_EIO, "%s: '%s' is not a readable string",
                               path, name) : 0;
}
