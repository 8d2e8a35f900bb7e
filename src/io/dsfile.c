/* dsfile.c — writing a dataset file mimo reads, atomically, and reading one
 * dataset of it back whole (mimo/dsfile.h). The file is built in memory
 * (an HDF5 core image) and written to a temporary beside PATH, renamed
 * onto PATH only when complete (base/fsutil.h's atomic writer): a crash,
 * a full disk or an error never leaves a half-written file under PATH. */
#include "mimo/dsfile.h"

#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/fsutil.h"
#include "io/h5_impl.h"
#include "mimo/error.h"

struct mimo_dsfile {
    hid_t f;
    mimo_atomic a;     /* the final name, and the temporary one written */
    mimo_h5_image img; /* built in memory: a full disk is one failed write */
};

int mimo_dsfile_create(const char *path, mimo_dsfile **out)
{
    *out = NULL;
    if (!path || !*path)
        return mimo_error(MIMO_EINVAL, "no output file given");
    mimo_dsfile *d = calloc(1, sizeof *d);
    if (!d)
        return mimo_error(MIMO_ENOMEM, "%s: out of memory", path);
    int rc = mimo_mkdirs_for(path);
    if (rc || (rc = mimo_atomic_begin(&d->a, path))) {
        free(d);
        return rc;
    }
    d->f = mimo_h5_mem_create(path, 64u << 20, &d->img);
    if (d->f < 0) {
        mimo_atomic_abort(&d->a);
        rc = (int)d->f;
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int mimo_dsfile_write_real(mimo_dsfile *f, const char *name,
                           const mimo_real *data, size_t rows, size_t cols)
{
    return mimo_h5_write_real(f->f, f->a.path, name, data, rows, cols);
}

int mimo_dsfile_write_rows(mimo_dsfile *f, const char *name,
                           const mimo_real *data, size_t rows, const mimo_shape *row)
{
    return mimo_h5_write_rows(f->f, f->a.path, name, data, rows, row);
}

int mimo_dsfile_write_int(mimo_dsfile *f, const char *name,
                          const int32_t *data, size_t rows)
{
    return mimo_h5_write_int(f->f, f->a.path, name, data, rows);
}

int mimo_dsfile_write_ints(mimo_dsfile *f, const char *name, const int32_t *data,
                           size_t rows, size_t cols)
{
    return mimo_h5_write_ints(f->f, f->a.path, name, data, rows, cols);
}

int mimo_dsfile_attr_str(mimo_dsfile *f, const char *name, const char *v)
{
    return mimo_h5_attr_write_str(f->f, f->a.path, name, v);
}

int mimo_dsfile_commit(mimo_dsfile **pf)
{
    mimo_dsfile *d = *pf;
    int rc = mimo_h5_mem_close(d->f, d->a.path, &d->img);
    if (!rc)
        rc = mimo_atomic_write(&d->a, d->img.buf, d->img.len);
    free(d->img.buf);
    if (!rc)
        rc = mimo_atomic_commit(&d->a, NULL);
    if (rc)
        mimo_atomic_abort(&d->a);
    free(d);
    *pf = NULL;
    return rc;
}

void mimo_dsfile_abort(mimo_dsfile **pf)
{
    if (!*pf)
        return;
    if (!mimo_h5_mem_close((*pf)->f, (*pf)->a.path, &(*pf)->img))
        free((*pf)->img.buf);
    mimo_atomic_abort(&(*pf)->a);
    free(*pf);
    *pf = NULL;
}

/* *count = max(rows * cols, 1) when count items of `size` bytes fit in an
 * object (PTRDIFF_MAX bytes); else 0. */
static int array_count(size_t rows, size_t cols, size_t size, size_t *count)
{
    size_t limit = (size_t)PTRDIFF_MAX / size;
    if (cols && rows > limit / cols)
        return 0;
    *count = rows * cols > 0 ? rows * cols : 1;
    return 1;
}

/* ---- reading one dataset back ---------------------------------------- */

/* Whether dataset `name` of f stores integers; negative on error. */
static int dataset_is_int(hid_t f, const char *name)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t t = d >= 0 ? H5Dget_type(d) : -1;
    int r = t >= 0 ? H5Tget_class(t) == H5T_INTEGER : -1;
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    return r;
}

static int read_doubles(hid_t f, const char *path, const char *name, double *dst)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    herr_t st = d < 0 ? -1 : H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL,
                                     H5P_DEFAULT, dst);
    if (d >= 0)
        H5Dclose(d);
    return st < 0 ? mimo_error(MIMO_EIO, "%s: cannot read dataset '%s'", path,
                               name) : 0;
}

int mimo_dsfile_read(const char *path, const char *name, size_t *rows,
                     size_t *cols, int *is_int, double **data)
{
    *data = NULL;
    hid_t f = mimo_h5_open_read(path, H5P_DEFAULT);
    if (f < 0)
        return (int)f;
    int rank = 0;
    size_t r = 0, c = 0;
    int rc = mimo_h5_shape(f, path, name, &rank, &r, &c, NULL);
    int isint = rc ? 0 : dataset_is_int(f, name);
    if (!rc && isint < 0)
        rc = mimo_error(MIMO_EIO, "%s: cannot read the type of '%s'", path, name);
    size_t count = 0;
    if (!rc && !array_count(r, c, sizeof(double), &count))
        rc = mimo_error(MIMO_ENOMEM, "%s: '%s' is too large", path, name);
    double *buf = NULL;
    if (!rc && !(buf = malloc(count * sizeof *buf)))
        rc = mimo_error(MIMO_ENOMEM, "%s: out of memory reading '%s'", path, name);
    if (!rc && r != 0 && c != 0)
        rc = read_doubles(f, path, name, buf);
    H5Fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    *rows = r;
    *cols = rank >= 2 ? c : 0;
    if (is_int)
        *is_int = isint;
    *data = buf;
    return 0;
}

