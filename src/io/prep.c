/* prep.c — /preprocessing from a training file into checkpoints (prep.h).
 *
 * The checksum: HDF5's filters cover only dataset chunks, and the copied
 * datasets keep the import's layout (no Fletcher32), so the whole group
 * has a CRC-32 of its own, stored as the root attribute
 * preprocessing_crc32 — a root attribute, which the checkpoint's
 * state_crc32 covers in turn (and which an older mimo, hashing every
 * root attribute, still verifies). It is computed over the group's tree
 * in name order: each link's name, each attribute's name and stored
 * bytes, each dataset's type class, element size, shape and stored
 * bytes (read in the file's own type: no conversion). A variable-length
 * value (not what mimo writes) counts by its type and shape only. */
#include "io/prep.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/h5_impl.h"
#include "mimo/error.h"

#define GROUP "preprocessing"

typedef struct {
    uLong crc;
    int bad;           /* an HDF5 call failed ... */
    char at[512];      /* the object being read (under /preprocessing) */
    char bad_at[512];  /* ... first on this one */
} walk;

static void failed(walk *w)
{
    if (!w->bad)
        snprintf(w->bad_at, sizeof w->bad_at, "%s", w->at[0] ? w->at : "/");
    w->bad = 1;
}

static void add(walk *w, const void *p, size_t n)
{
    w->crc = crc32(w->crc, p, (uInt)n);
}

/* The type's class and size, the shape, and (fixed-size types) the bytes
 * read through read(id, type, buf). */
static void add_value(walk *w, hid_t id, hid_t t, hid_t sp, int is_attr)
{
    int64_t head[2 + H5S_MAX_RANK] = {(int64_t)H5Tget_class(t), (int64_t)H5Tget_size(t)};
    hsize_t dims[H5S_MAX_RANK];
    int rank = sp < 0 ? -1 : H5Sget_simple_extent_dims(sp, dims, NULL);
    hssize_t npts = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    if (rank < 0 || npts < 0) {
        failed(w);
        return;
    }
    for (int k = 0; k < rank; k++)
        head[2 + k] = (int64_t)dims[k];
    add(w, head, sizeof(int64_t) * (size_t)(2 + rank));
    if (H5Tis_variable_str(t) > 0 || H5Tget_class(t) == H5T_VLEN || !npts)
        return;
    size_t n = (size_t)npts * H5Tget_size(t);
    void *buf = malloc(n);
    herr_t st = !buf ? -1 : is_attr ? H5Aread(id, t, buf)
                          : H5Dread(id, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (st < 0)
        failed(w);
    else
        add(w, buf, n);
    free(buf);
}

static herr_t attr_visit(hid_t loc, const char *name, const H5A_info_t *info,
                         void *u)
{
    walk *w = u;
    (void)info;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a), sp = a < 0 ? -1 : H5Aget_space(a);
    add(w, name, strlen(name) + 1);
    if (t < 0 || sp < 0)
        failed(w);
    else
        add_value(w, a, t, sp, 1);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    return 0;
}

static void add_attrs(walk *w, hid_t obj)
{
    if (H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, NULL, attr_visit, w) < 0)
        failed(w);
}

static herr_t link_visit(hid_t grp, const char *name, const H5L_info_t *info,
                         void *u);

static void add_group(walk *w, hid_t g)
{
    hsize_t idx = 0;
    add_attrs(w, g);
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, link_visit, w) < 0)
        failed(w);
}

static herr_t link_visit(hid_t grp, const char *name, const H5L_info_t *info,
                         void *u)
{
    walk *w = u;
    H5O_info_t oi;
    (void)info;
    size_t up = strlen(w->at); /* w->at is this object's path while in it */
    snprintf(w->at + up, sizeof w->at - up, "%s%s", up ? "/" : "", name);
    add(w, name, strlen(name) + 1);
    if (H5Oget_info_by_name(grp, name, &oi, H5P_DEFAULT) < 0) {
        failed(w);
        w->at[up] = '\0';
        return 0;
    }
    char tag = oi.type == H5O_TYPE_GROUP ? 'G' : oi.type == H5O_TYPE_DATASET ? 'D' : '?';
    add(w, &tag, 1);
    if (oi.type == H5O_TYPE_GROUP) {
        hid_t g = H5Gopen2(grp, name, H5P_DEFAULT);
        if (g < 0)
            failed(w);
        else {
            add_group(w, g);
            H5Gclose(g);
        }
    } else if (oi.type == H5O_TYPE_DATASET) {
        hid_t d = H5Dopen2(grp, name, H5P_DEFAULT);
        hid_t t = d < 0 ? -1 : H5Dget_type(d), sp = d < 0 ? -1 : H5Dget_space(d);
        if (t < 0 || sp < 0)
            failed(w);
        else {
            add_attrs(w, d);
            add_value(w, d, t, sp, 0);
        }
        if (sp >= 0)
            H5Sclose(sp);
        if (t >= 0)
            H5Tclose(t);
        if (d >= 0)
            H5Dclose(d);
    }
    w->at[up] = '\0';
    return 0;
}

/* The CRC-32 of f's /preprocessing (which must exist). */
static int group_crc(hid_t f, const char *path, uint32_t *out)
{
    walk w = {crc32(0L, Z_NULL, 0), 0, "", ""};
    hid_t g = H5Gopen2(f, GROUP, H5P_DEFAULT);
    if (g < 0)
        return mimo_h5_fail("H5Gopen2", path, GROUP);
    add_group(&w, g);
    H5Gclose(g);
    H5Eclear2(H5E_DEFAULT);
    if (w.bad)
        return mimo_error(MIMO_EIO, "%s: /preprocessing/%s cannot be read (HDF5's "
                          "checksum fails?): the file is damaged", path, w.bad_at);
    *out = (uint32_t)w.crc;
    return 0;
}

int mimo_prep_take(hid_t f, const char *path, void **buf, size_t *len)
{
    *buf = NULL, *len = 0;
    if (!mimo_h5_exists(f, GROUP))
        return 0;
    char label[4200];
    snprintf(label, sizeof label, "%s#preprocessing", path);
    mimo_h5_image img;
    hid_t m = mimo_h5_mem_create(label, 1u << 16, &img);
    if (m < 0)
        return (int)m;
    int rc = 0;
    MIMO_H5_TRY(&rc, H5Ocopy(f, GROUP, m, GROUP, H5P_DEFAULT, H5P_DEFAULT), path,
                GROUP);
    int closed = mimo_h5_mem_close(m, label, &img);
    if (!rc)
        rc = closed;
    if (rc)
        return rc;
    *buf = img.buf, *len = img.len;
    return 0;
}

int mimo_prep_take_file(const char *path, void **buf, size_t *len)
{
    *buf = NULL, *len = 0;
    hid_t f = mimo_h5_open_read(path, H5P_DEFAULT);
    if (f < 0)
        return (int)f;
    int rc = mimo_prep_take(f, path, buf, len);
    H5Fclose(f);
    return rc;
}

hid_t mimo_prep_open(const void *buf, size_t len, const char *label)
{
    hid_t fapl = -1, f = -1;
    int rc = 0;
    char name[4200]; /* not a file's name: the core driver would look at it */
    snprintf(name, sizeof name, "%s#image", label);
    mimo_h5_quiet();
    MIMO_H5_TRY(&rc, fapl = H5Pcreate(H5P_FILE_ACCESS), label, NULL);
    MIMO_H5_TRY(&rc, H5Pset_fapl_core(fapl, 1u << 16, 0), label, NULL);
    /* HDF5 copies the image (its default): buf stays the caller's */
    MIMO_H5_TRY(&rc, H5Pset_file_image(fapl, (void *)buf, len), label, NULL);
    MIMO_H5_TRY(&rc, f = H5Fopen(name, H5F_ACC_RDONLY, fapl), label, NULL);
    if (fapl >= 0)
        H5Pclose(fapl);
    return rc ? rc : f;
}

int mimo_prep_copy(hid_t f, const char *path, const void *buf, size_t len)
{
    char label[4200];
    snprintf(label, sizeof label, "%s#preprocessing", path);
    hid_t src = mimo_prep_open(buf, len, label);
    if (src < 0)
        return (int)src;
    uint32_t crc = 0;
    int rc = 0;
    MIMO_H5_TRY(&rc, H5Ocopy(src, GROUP, f, GROUP, H5P_DEFAULT, H5P_DEFAULT), path,
                GROUP);
    H5Fclose(src);
    if (!rc)
        rc = group_crc(f, path, &crc);
    return rc ? rc : mimo_h5_attr_write_i64(f, path, "preprocessing_crc32", crc);
}

int mimo_prep_verify(hid_t f, const char *path)
{
    int has = mimo_h5_exists(f, GROUP), sealed = H5Aexists(f, "preprocessing_crc32") > 0;
    int64_t want = -1;
    uint32_t got = 0;
    if (!has && !sealed)
        return 0;
    if (has != sealed)
        return mimo_error(MIMO_EINVAL, "%s: %s: the file is damaged", path,
                          has ? "/preprocessing without its checksum "
                                "(attribute 'preprocessing_crc32')"
                              : "a checksum of /preprocessing but no such group");
    int rc = mimo_h5_attr_read_i64(f, path, "preprocessing_crc32", &want);
    if (!rc)
        rc = group_crc(f, path, &got);
    if (!rc && (int64_t)got != want)
        rc = mimo_error(MIMO_EINVAL, "%s: /preprocessing (the vocabularies and "
                        "statistics of the training data) fails its checksum: the "
                        "file is damaged", path);
    return rc;
}
