/* checkpoint.c — saving and loading checkpoints (layout in README.md,
 * "Files", and include/mimo/checkpoint.h). A save builds the whole file in
 * memory (HDF5's core driver), then writes it through the atomic writer
 * (base/fsutil.h): a crash at any moment leaves either the old or the new
 * checkpoint under its name, never a torn one, and a full disk is one
 * write() that fails, never an HDF5 error path.
 *
 * Integrity: every tensor is stored with HDF5's Fletcher32 filter (HDF5
 * verifies it on every read, in mimo, h5py or h5dump); the run state —
 * every attribute of / and /optimizer, and /config — has a CRC-32 of its
 * own (state_crc32), since HDF5 filters cover only dataset chunks. On load
 * every tensor must also be finite and every position in range. */
#include "core/model.h"
#include "mimo/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/error_impl.h"
#include "base/fsutil.h"
#include "io/checkpoint_impl.h"
#include "io/h5_impl.h"
#include "io/prep.h"
#include "mimo/config.h"
#include "mimo/error.h"
#include "mimo/version.h"

#ifdef MIMO_TEST_HOOKS
void (*mimo_checkpoint_fault_hook)(void) = NULL;
#endif

int mimo_ckpt_set(mimo_ckpt_state *st, const char *name, double value)
{
    for (int i = 0; i < st->n_extra; i++)
        if (strcmp(st->extra[i].name, name) == 0) {
            st->extra[i].value = value;
            return 0;
        }
    if (strlen(name) >= MIMO_CKPT_NAME_MAX)
        return mimo_error(MIMO_EINVAL, "checkpoint state name '%s' is longer than "
                          "%d characters", name, MIMO_CKPT_NAME_MAX - 1);
    if (st->n_extra == st->cap_extra) {
        int cap = st->cap_extra ? 2 * st->cap_extra : 32;
        mimo_ckpt_extra *e = realloc(st->extra, sizeof *e * (size_t)cap);
        if (!e)
            return mimo_error(MIMO_ENOMEM, "out of memory");
        st->extra = e, st->cap_extra = cap;
    }
    snprintf(st->extra[st->n_extra].name, MIMO_CKPT_NAME_MAX, "%s", name);
    st->extra[st->n_extra++].value = value;
    return 0;
}

static mimo_ckpt_array *find_array(const mimo_ckpt_state *st, const char *name)
{
    for (int i = 0; i < st->n_array; i++)
        if (strcmp(st->array[i].name, name) == 0)
            return &st->array[i];
    return NULL;
}

int mimo_ckpt_set_array(mimo_ckpt_state *st, const char *name, const double *v,
                        size_t n)
{
    mimo_ckpt_array *a = find_array(st, name);
    if (!a && strlen(name) >= MIMO_CKPT_NAME_MAX)
        return mimo_error(MIMO_EINVAL, "checkpoint state name '%s' is longer than "
                          "%d characters", name, MIMO_CKPT_NAME_MAX - 1);
    if (!a) {
        mimo_ckpt_array *arr = realloc(st->array, sizeof *arr * (size_t)(st->n_array + 1));
        if (!arr)
            return mimo_error(MIMO_ENOMEM, "out of memory");
        st->array = arr;
        a = &arr[st->n_array++];
        *a = (mimo_ckpt_array){.n = 0};
        snprintf(a->name, MIMO_CKPT_NAME_MAX, "%s", name);
    }
    double *copy = malloc(sizeof *copy * (n ? n : 1));
    if (!copy)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    if (n)
        memcpy(copy, v, sizeof *copy * n);
    free(a->v);
    a->v = copy, a->n = n;
    return 0;
}

const double *mimo_ckpt_get_array(const mimo_ckpt_state *st, const char *name,
                                  size_t *n)
{
    const mimo_ckpt_array *a = find_array(st, name);
    *n = a ? a->n : 0;
    return a ? a->v : NULL;
}

void mimo_ckpt_state_free(mimo_ckpt_state *st)
{
    free(st->extra);
    st->extra = NULL;
    st->n_extra = st->cap_extra = 0;
    for (int i = 0; i < st->n_array; i++)
        free(st->array[i].v);
    free(st->array);
    st->array = NULL;
    st->n_array = 0;
}

double mimo_ckpt_get(const mimo_ckpt_state *st, const char *name, double dflt)
{
    for (int i = 0; i < st->n_extra; i++)
        if (strcmp(st->extra[i].name, name) == 0)
            return st->extra[i].value;
    return dflt;
}

/* ---- tensors ------------------------------------------------------------- */

/* "(3, 4)", "(4,)": a shape as Python prints it. */
static void py_shape(const mimo_shape *s, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "(");
    for (int k = 0; k < s->rank && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, "%s%d", k ? ", " : "",
                                 s->dim[k]);
    if (used < len)
        snprintf(buf + used, len - used, "%s)", s->rank == 1 ? "," : "");
}

/* Writes each tensor of buf under group/<layer>/<name> (only the trained
 * ones for optimizer moments, which have no others). */
static int write_tensors(hid_t f, const char *path, const char *group,
                         const mimo_graph *g, const mimo_real *buf, int trained)
{
    char name[512];
    for (int t = 0; t < mimo_graph_n_tensors(g); t++) {
        mimo_param_info p = mimo_graph_tensor(g, t);
        if (trained && !p.trainable)
            continue;
        snprintf(name, sizeof name, "%s/%s/%s", group, p.layer, p.name);
        int rc = mimo_h5_write_tensor(f, path, name, buf + p.offset, &p.shape);
        if (rc)
            return rc;
    }
    return 0;
}

/* Reads group/<layer>/<name> into buf, checking each shape (only the
 * trained tensors for optimizer moments). */
/* trained: only the trained tensors (optimizer moments). init: a file of
 * another run's weights, which may lack the learned task weights (they
 * then start at 0). */
/* Reads the tensor `name` of f (of p's shape, checked by the caller) into
 * buf at p's offset; a file given to --init may be any HDF5 file (init:
 * its storage is checked). Every value must be finite. */
static int read_one(hid_t f, const char *path, const char *name,
                    const mimo_param_info *p, mimo_real *buf, int init)
{
    int rc;
    if (init && (rc = mimo_h5_check_storage(f, path, name)))
        return rc; /* any file: unwritten, virtual or external storage */
    if ((rc = mimo_h5_read_all(f, path, name, buf + p->offset)))
        return rc;
    size_t bad = 0, first = 0, n = (size_t)mimo_shape_size(&p->shape);
    for (size_t i = n; i-- > 0;)
        if (!isfinite(buf[p->offset + i]))
            bad++, first = i;
    if (bad)
        return mimo_error(MIMO_EINVAL, "%s: tensor '%s' holds %zu NaN/Inf "
                          "value(s), the first at flat index %zu: the file is "
                          "damaged (a trained network's tensors are finite)",
                          path, name, bad, first);
    return 0;
}

static int same_shape(const mimo_shape *a, const mimo_shape *b)
{
    return a->rank == b->rank &&
           memcmp(a->dim, b->dim, sizeof(int) * (size_t)a->rank) == 0;
}

static int read_tensors(hid_t f, const char *path, const char *group,
                        const mimo_graph *g, mimo_real *buf, int trained, int init)
{
    char name[512], want[96], got[96];
    for (int t = 0; t < mimo_graph_n_tensors(g); t++) {
        mimo_param_info p = mimo_graph_tensor(g, t);
        mimo_shape s;
        int rc;
        if (trained && !p.trainable)
            continue;
        snprintf(name, sizeof name, "%s/%s/%s", group, p.layer, p.name);
        py_shape(&p.shape, want, sizeof want);
        /* --init from a file without them: learned head weights start
         * as a fresh run's (uncertainty's s_h, gradnorm's w and l0) */
        if (init && (strcmp(p.layer, "loss_weighting") == 0 ||
                     strcmp(p.layer, "task_balancing") == 0) &&
            !mimo_h5_exists(f, name))
            continue;
        if (!mimo_h5_exists(f, name))
            return mimo_error(MIMO_EINVAL, "%s: no '%s' for layer '%s' (%s %s)",
                              path, name, p.layer, p.name, want);
        if ((rc = mimo_h5_tensor_shape(f, path, name, &s)))
            return rc;
        if (!same_shape(&s, &p.shape)) {
            py_shape(&s, got, sizeof got);
            return mimo_error(MIMO_ESHAPE, "%s: '%s' has shape %s, layer '%s' "
                              "needs %s", path, name, got, p.layer, want);
        }
        if ((rc = read_one(f, path, name, &p, buf, init)))
            return rc;
    }
    return 0;
}

/* ---- the state's checksum ---------------------------------------------------- */

typedef struct {
    uLong crc;
    const char *path;
    char bad[160]; /* an attribute that is not a scalar number or string */
} crc_walk;

static void crc_bytes(crc_walk *w, const void *p, size_t n)
{
    w->crc = crc32(w->crc, p, (uInt)n);
}

/* name, then the value: an integer as int64 and a float as float64, both
 * little-endian, a string's bytes. */
static herr_t crc_attr(hid_t loc, const char *name, const H5A_info_t *info, void *u)
{
    crc_walk *w = u;
    (void)info;
    if (strcmp(name, "state_crc32") == 0)
        return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a < 0 ? -1 : H5Aget_type(a), sp = a < 0 ? -1 : H5Aget_space(a);
    H5T_class_t cls = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
    hssize_t npts = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    unsigned char le[8];
    int ok = npts == 1;
    crc_bytes(w, name, strlen(name) + 1);
    if (ok && (cls == H5T_INTEGER || cls == H5T_FLOAT)) {
        int64_t i = 0;
        double d = 0;
        uint64_t bits = 0;
        ok = H5Aread(a, cls == H5T_INTEGER ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE,
                     cls == H5T_INTEGER ? (void *)&i : (void *)&d) >= 0;
        if (cls == H5T_INTEGER)
            bits = (uint64_t)i;
        else
            memcpy(&bits, &d, 8);
        for (int k = 0; k < 8; k++)
            le[k] = (unsigned char)(bits >> (8 * k));
        crc_bytes(w, le, 8);
    } else if (ok && cls == H5T_STRING) {
        char *v = NULL;
        ok = mimo_h5_attr_read_str(loc, w->path, name, &v) == 0;
        if (ok)
            crc_bytes(w, v, strlen(v) + 1);
        free(v);
    } else
        ok = 0;
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    if (!ok && !w->bad[0])
        snprintf(w->bad, sizeof w->bad, "%s", name);
    return 0;
}

/* The CRC-32 of the run state: the attributes of / and /optimizer in name
 * order, and the /config text. */
static int state_crc(hid_t f, const char *path, uint32_t *out)
{
    crc_walk w = {crc32(0L, Z_NULL, 0), path, ""};
    char *text = NULL;
    int rc = 0;
    if (H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, NULL, crc_attr, &w) < 0)
        rc = mimo_h5_fail("H5Aiterate2", path, NULL);
    if (!rc && mimo_h5_exists(f, "optimizer")) {
        hid_t g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
        crc_bytes(&w, "optimizer/", 10);
        if (g < 0 || H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, NULL, crc_attr, &w) < 0)
            rc = mimo_h5_fail("H5Aiterate2", path, "optimizer");
        if (g >= 0)
            H5Gclose(g);
    }
    if (!rc && w.bad[0])
        rc = mimo_error(MIMO_EINVAL, "%s: attribute '%s' is not a single number or "
                        "string", path, w.bad);
    if (!rc && mimo_h5_exists(f, "config") &&
        !(rc = mimo_h5_read_text(f, path, "config", &text)))
        crc_bytes(&w, text, strlen(text) + 1);
    free(text);
    *out = (uint32_t)w.crc;
    return rc;
}

int mimo_checkpoint_seal(hid_t f, const char *path)
{
    uint32_t crc;
    int rc = state_crc(f, path, &crc);
    return rc ? rc : mimo_h5_attr_write_i64(f, path, "state_crc32", (int64_t)crc);
}

/* Format 2 and later: the state's checksum must match. */
static int verify_state(hid_t f, const char *path)
{
    int64_t want = -1;
    uint32_t got;
    int rc = mimo_h5_attr_read_i64(f, path, "state_crc32", &want);
    if (rc)
        return mimo_error(MIMO_EINVAL, "%s: no state checksum (attribute "
                          "'state_crc32'): not a complete mimo checkpoint", path);
    if ((rc = state_crc(f, path, &got)))
        return rc;
    if ((int64_t)got != want)
        return mimo_error(MIMO_EINVAL, "%s: the run state (attributes of / and "
                          "/optimizer, /config) fails its checksum: the file is "
                          "damaged", path);
    return 0;
}

/* ---- save ------------------------------------------------------------------ */

static int write_state(hid_t f, const char *path, const mimo_ckpt_state *st)
{
    int rc = 0;
    const struct { const char *k; int64_t v; } ints[] = {
        {"format_version", MIMO_CKPT_FORMAT_VERSION}, {"epoch", st->epoch},
        {"step", st->step}, {"global_step", st->global_step},
        {"samples_seen", st->samples_seen}, {"world_size", st->world_size},
        {"rng_seed", (int64_t)st->seed}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints && !rc; i++)
        rc = mimo_h5_attr_write_i64(f, path, ints[i].k, ints[i].v);
    if (!rc)
        rc = mimo_h5_attr_write_str(f, path, "format", "mimo-checkpoint");
    if (!rc)
        rc = mimo_h5_attr_write_str(f, path, "mimo_version", mimo_version());
    if (!rc)
        rc = mimo_h5_attr_write_str(f, path, "rng", "xoshiro256** seeded by "
                                    "splitmix64(rng_seed); epoch order from "
                                    "(rng_seed, epoch)");
    if (!rc)
        rc = mimo_h5_attr_write_str(f, path, "integrity", "Fletcher32 filter on "
                                    "every tensor; state_crc32: CRC-32 of the "
                                    "attributes of / and /optimizer and /config; "
                                    "preprocessing_crc32: of /preprocessing, "
                                    "when there");
    if (!rc && st->lineage[0])
        rc = mimo_h5_attr_write_str(f, path, "lineage", st->lineage);
    if (!rc)
        rc = mimo_h5_attr_write_f64(f, path, "lr", st->lr);
    for (int i = 0; i < st->n_extra && !rc; i++)
        rc = mimo_h5_attr_write_f64(f, path, st->extra[i].name, st->extra[i].value);
    char name[MIMO_CKPT_NAME_MAX + 8];
    for (int i = 0; i < st->n_array && !rc; i++)
        if (st->array[i].n) {
            snprintf(name, sizeof name, "state/%s", st->array[i].name);
            rc = mimo_h5_write_f64(f, path, name, st->array[i].v, st->array[i].n);
        }
    return rc;
}

/* What a checkpoint holds, read from a live model or from a snapshot of
 * one (the graph and config are fixed during a run: borrowed). */
typedef struct {
    const mimo_graph *g;
    const mimo_spec *spec;
    const mimo_real *params, *best;   /* best may be NULL */
    const mimo_real *slot[MIMO_CKPT_MAX_SLOTS];
    const char *slot_name[MIMO_CKPT_MAX_SLOTS];
    int n_slots;
    long long steps;                  /* the optimizer's */
    const mimo_ckpt_state *st;
    const void *pre;                  /* the training data's /preprocessing */
    size_t pre_len;                   /* (an image, io/prep.h), or NULL */
} ckpt_view;

static ckpt_view model_view(mimo_model *m, const mimo_ckpt_state *st,
                            const mimo_real *best)
{
    mimo_optim *o = mimo_model_optim(m);
    ckpt_view v = {mimo_model_graph(m), mimo_graph_spec(mimo_model_graph(m)),
                   mimo_model_params(m), best, {0}, {0}, mimo_optim_n_slots(o),
                   mimo_optim_steps(o), st, NULL, 0};
    for (int k = 0; k < v.n_slots; k++)
        v.slot[k] = mimo_optim_slot(o, k), v.slot_name[k] = mimo_optim_slot_name(o, k);
    return v;
}

static int write_all(hid_t f, const char *path, const ckpt_view *v)
{
    const mimo_spec *spec = v->spec;
    char group[128];
    int rc = write_state(f, path, v->st);
    if (!rc)
        rc = mimo_h5_write_text(f, path, "config", spec->text ? spec->text : "");
    if (!rc)
        rc = write_tensors(f, path, "params", v->g, v->params, 0);
    for (int k = 0; k < v->n_slots && !rc; k++) {
        snprintf(group, sizeof group, "optimizer/%s", v->slot_name[k]);
        rc = write_tensors(f, path, group, v->g, v->slot[k], 1);
    }
    if (!rc) { /* the step count lives on /optimizer (created if no slots) */
        hid_t grp = mimo_h5_exists(f, "optimizer")
                        ? H5Gopen2(f, "optimizer", H5P_DEFAULT)
                        : H5Gcreate2(f, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        rc = grp < 0 ? mimo_error(MIMO_EIO, "%s: cannot create /optimizer", path)
                     : mimo_h5_attr_write_i64(grp, path, "steps", v->steps);
        if (grp >= 0 && !rc)
            rc = mimo_h5_attr_write_str(grp, path, "type",
                                        mimo_opt_name(spec->train.opt.kind));
        if (grp >= 0)
            H5Gclose(grp);
    }
    if (!rc && v->best)
        rc = write_tensors(f, path, "best_params", v->g, v->best, 0);
    if (!rc && v->pre) /* its checksum a root attribute, under the seal's */
        rc = mimo_prep_copy(f, path, v->pre, v->pre_len);
    if (!rc)
        rc = mimo_checkpoint_seal(f, path);
    return rc;
}

/* A checkpoint too large to build in memory: written straight to path
 * (atomically), after checking the file system has room for it. */
static int save_direct(const char *path, const ckpt_view *v, size_t est)
{
    mimo_atomic a;
    int rc = mimo_atomic_begin(&a, path);
    if (rc)
        return rc;
    double avail = mimo_free_bytes(path);
    char fdpath[4200];
    if (avail >= 0 && avail < (double)est * 1.02) {
        mimo_atomic_abort(&a);
        return mimo_error(MIMO_EIO, "%s: cannot write: No space left on device (the "
                          "file needs about %.1f MB; %.1f MB free on that file "
                          "system)", path, (double)est / 1e6, avail / 1e6);
    }
    mimo_h5_quiet();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_LATEST);
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG); /* closing closes all in it */
    /* HDF5 opens by name: the name of the file the atomic writer created */
    hid_t f = mimo_atomic_fd_path(&a, fdpath, sizeof fdpath)
                  ? -1 : H5Fcreate(fdpath, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        rc = mimo_h5_fail("H5Fcreate", a.tmp, NULL);
        mimo_atomic_abort(&a);
        return rc;
    }
    rc = write_all(f, path, v);
    if (H5Fclose(f) < 0 && !rc)
        rc = mimo_h5_fail("H5Fclose", a.tmp, NULL);
    if (!rc)
        rc = mimo_atomic_commit(&a, MIMO_CKPT_FAULT_HOOK);
    if (rc)
        mimo_atomic_abort(&a);
    return rc;
}

/* The file's first buffer, an upper bound: the parameters, each optimizer
 * moment, best, and 1 MiB for the rest (mimo_checkpoint_sizes estimates
 * the file itself, for summary and bench). */
static size_t estimate(size_t params, size_t trained, int slots)
{
    return sizeof(float) * (2 * params + (size_t)slots * trained) + (1u << 20);
}

size_t mimo_checkpoint_estimate(mimo_model *m)
{
    return estimate(mimo_model_param_count(m), mimo_model_trained_count(m),
                    mimo_optim_n_slots(mimo_model_optim(m)));
}

/* HDF5's metadata, measured on the configs/ checkpoints (1.10 format,
 * checksummed headers): about 400 bytes per tensor (its object header,
 * chunk index and the groups above it) and 7.5 kB for the rest (superblock,
 * the root's and /optimizer's attributes, the run state's arrays). */
#define CKPT_BYTES_PER_TENSOR 400.0
#define CKPT_BYTES_FIXED 7500.0

void mimo_checkpoint_sizes(const mimo_graph *g, double *file, double *snapshot)
{
    const mimo_spec *spec = mimo_graph_spec(g);
    mimo_optim *o = NULL;
    int slots = mimo_optim_create(&spec->train.opt, 0, &o) ? 2 : mimo_optim_n_slots(o);
    mimo_optim_free(&o);
    /* best_params only with early stopping's restore_best */
    int best = spec->train.early.enabled && spec->train.early.restore_best;
    double f = CKPT_BYTES_FIXED + (spec->text ? (double)strlen(spec->text) : 0);
    double n = 0, trained = 0;
    for (int t = 0; t < mimo_graph_n_tensors(g); t++) {
        mimo_param_info p = mimo_graph_tensor(g, t);
        int copies = 1 + best + (p.trainable ? slots : 0);
        f += copies * (mimo_h5_tensor_stored_bytes(&p.shape) + CKPT_BYTES_PER_TENSOR);
        n += (double)p.size, trained += p.trainable ? (double)p.size : 0;
    }
    *file = f;
    *snapshot = sizeof(mimo_real) * (2 * n + slots * trained); /* as snap_take */
}

/* Builds v's file in memory (*buf: keep when it fits there, else
 * malloc'd; *cap bytes allocated), or, when it would take more than half
 * the available memory, writes it to path at once (*buf NULL). */
static int build_in(const char *path, const ckpt_view *v, size_t est, void *keep,
                    size_t keep_cap, void **buf, size_t *len, size_t *cap)
{
    mimo_h5_image img;
    double mem = mimo_available_bytes();
    *buf = NULL, *len = 0, *cap = 0;
    if (mem > 0 && (double)est > mem / 2)
        return save_direct(path, v, est);
    hid_t f = mimo_h5_mem_create_in(path, est, keep, keep_cap, &img);
    if (f < 0)
        return (int)f;
    int rc = write_all(f, path, v);
    int closed = mimo_h5_mem_close(f, path, &img); /* on every path */
    if (!rc)
        rc = closed;
    if (rc) {
        if (img.buf != keep)
            free(img.buf);
        return rc;
    }
    *buf = img.buf, *len = img.len, *cap = img.cap;
    return 0;
}

int mimo_checkpoint_build(const char *path, mimo_model *m, const mimo_ckpt_state *st,
                          const mimo_real *best, const void *pre, size_t pre_len,
                          void **buf, size_t *len)
{
    if (mimo_optim_n_slots(mimo_model_optim(m)) > MIMO_CKPT_MAX_SLOTS)
        return mimo_error(MIMO_EINVAL, "%s: an optimizer with more than %d moments",
                          path, MIMO_CKPT_MAX_SLOTS);
    ckpt_view v = model_view(m, st, best);
    v.pre = pre, v.pre_len = pre_len;
    size_t cap;
    return build_in(path, &v, mimo_checkpoint_estimate(m) + pre_len, NULL, 0, buf,
                    len, &cap);
}

/* ---- snapshots ---------------------------------------------------------------- */

/* dst = a deep copy of src (dst's arrays freed first). */
static int state_copy(mimo_ckpt_state *dst, const mimo_ckpt_state *src)
{
    mimo_ckpt_state_free(dst);
    *dst = *src;
    dst->extra = NULL, dst->array = NULL;
    dst->n_extra = dst->cap_extra = dst->n_array = 0;
    for (int i = 0; i < src->n_extra; i++)
        if (mimo_ckpt_set(dst, src->extra[i].name, src->extra[i].value))
            return MIMO_ENOMEM;
    for (int i = 0; i < src->n_array; i++)
        if (mimo_ckpt_set_array(dst, src->array[i].name, src->array[i].v,
                                src->array[i].n))
            return MIMO_ENOMEM;
    return 0;
}

size_t mimo_ckpt_snap_bytes(mimo_model *m)
{
    return sizeof(mimo_real) * (2 * mimo_model_param_count(m) +
                                (size_t)mimo_optim_n_slots(mimo_model_optim(m)) *
                                    mimo_model_trained_count(m));
}

int mimo_ckpt_snap_take(mimo_ckpt_snap *s, mimo_model *m, const mimo_ckpt_state *st,
                        const mimo_real *best)
{
    mimo_optim *o = mimo_model_optim(m);
    size_t n = mimo_model_param_count(m), nt = mimo_model_trained_count(m);
    int slots = mimo_optim_n_slots(o);
    if (slots > MIMO_CKPT_MAX_SLOTS)
        return mimo_error(MIMO_EINVAL, "an optimizer with more than %d moments",
                          MIMO_CKPT_MAX_SLOTS);
    if (!s->buf) { /* once: the sizes hold for the run */
        s->n = n, s->trained = nt, s->n_slots = slots;
        if (!(s->buf = malloc(mimo_ckpt_snap_bytes(m))))
            return mimo_error(MIMO_ENOMEM, "out of memory for the checkpoint's "
                              "snapshot (%.1f MB)", (double)mimo_ckpt_snap_bytes(m) / 1e6);
    }
    mimo_real *p = s->buf;
    memcpy(p, mimo_model_params(m), sizeof *p * n);
    for (int k = 0; k < slots; k++)
        memcpy(p + n + (size_t)k * nt, mimo_optim_slot(o, k), sizeof *p * nt);
    s->has_best = best != NULL;
    if (best)
        memcpy(p + n + (size_t)slots * nt, best, sizeof *p * n);
    s->model = m;
    s->steps = mimo_optim_steps(o);
    return state_copy(&s->st, st) ? mimo_error(MIMO_ENOMEM, "out of memory") : 0;
}

int mimo_ckpt_snap_build(const char *path, mimo_ckpt_snap *s, void **buf,
                         size_t *len)
{
    mimo_optim *o = mimo_model_optim(s->model);
    const mimo_graph *g = mimo_model_graph(s->model);
    ckpt_view v = {g, mimo_graph_spec(g), s->buf,
                   s->has_best ? s->buf + s->n + (size_t)s->n_slots * s->trained : NULL,
                   {0}, {0}, s->n_slots, s->steps, &s->st, s->pre, s->pre_len};
    for (int k = 0; k < s->n_slots; k++)
        v.slot[k] = s->buf + s->n + (size_t)k * s->trained,
        v.slot_name[k] = mimo_optim_slot_name(o, k);
    size_t cap;
    int rc = build_in(path, &v, estimate(s->n, s->trained, s->n_slots) + s->pre_len,
                      s->image,
                      s->image_cap, buf, len, &cap);
    if (!rc && *buf && *buf != s->image) { /* the first, or outgrown: keep it */
        free(s->image);
        s->image = *buf, s->image_cap = cap;
    }
    return rc;
}

void mimo_ckpt_snap_free(mimo_ckpt_snap *s)
{
    free(s->buf);
    free(s->image);
    mimo_ckpt_state_free(&s->st);
    memset(s, 0, sizeof *s);
}

int mimo_checkpoint_write(const char *path, const void *buf, size_t len)
{
    mimo_atomic a;
    int rc = mimo_atomic_begin(&a, path);
    if (rc)
        return rc;
    if (!(rc = mimo_atomic_write(&a, buf, len)))
        rc = mimo_atomic_commit(&a, MIMO_CKPT_FAULT_HOOK);
    if (rc)
        mimo_atomic_abort(&a);
    return rc;
}

int mimo_checkpoint_save(const char *path, mimo_model *m,
                         const mimo_ckpt_state *st, const mimo_real *best)
{
    void *buf;
    size_t len;
    int rc = mimo_checkpoint_build(path, m, st, best, NULL, 0, &buf, &len);
    if (!rc && buf)
        rc = mimo_checkpoint_write(path, buf, len);
    free(buf);
    return rc;
}

/* ---- load ------------------------------------------------------------------ */

/* Opens path and checks it is a mimo checkpoint of a version we read, and
 * (format 2 on) that its state is intact. */
static hid_t open_checkpoint(const char *path)
{
    hid_t f = mimo_h5_open_read(path, H5P_DEFAULT);
    if (f < 0)
        return f;
    char *fmt = NULL;
    int64_t ver = 0;
    int rc = mimo_h5_attr_read_str(f, path, "format", &fmt);
    if (!rc && strcmp(fmt, "mimo-checkpoint") != 0)
        rc = mimo_error(MIMO_EINVAL, "%s: not a mimo checkpoint (format '%s')", path,
                        fmt);
    if (rc == MIMO_EINVAL && !fmt)
        rc = mimo_error(MIMO_EINVAL, "%s: not a mimo checkpoint (no 'format' "
                        "attribute)", path);
    if (!rc)
        rc = mimo_h5_attr_read_i64(f, path, "format_version", &ver);
    if (!rc && (ver < 1 || ver > MIMO_CKPT_FORMAT_VERSION))
        rc = mimo_error(MIMO_EINVAL, "%s: checkpoint format version %lld, this "
                        "mimo reads 1 to %d", path, (long long)ver,
                        MIMO_CKPT_FORMAT_VERSION);
    if (!rc && ver >= 2) /* format 1 (before checksums): tensors still checked finite */
        rc = verify_state(f, path);
    if (!rc && ver >= 2)
        rc = mimo_prep_verify(f, path);
    free(fmt);
    if (rc) {
        H5Fclose(f);
        return rc;
    }
    return f;
}

int mimo_checkpoint_prep(const char *path, void **buf, size_t *len)
{
    *buf = NULL, *len = 0;
    hid_t f = open_checkpoint(path); /* its /preprocessing checksum verified */
    if (f < 0)
        return (int)f;
    int rc = mimo_prep_take(f, path, buf, len);
    H5Fclose(f);
    return rc;
}

int mimo_checkpoint_spec(const char *path, const char *const *sets, int n_sets,
                         mimo_spec *spec)
{
    hid_t f = open_checkpoint(path);
    if (f < 0) {
        mimo_spec_defaults(spec);
        return (int)f;
    }
    char *text = NULL;
    int rc = mimo_h5_read_text(f, path, "config", &text);
    H5Fclose(f);
    if (rc) {
        mimo_spec_defaults(spec);
        return rc;
    }
    char name[4200];
    snprintf(name, sizeof name, "%s:/config", path);
    rc = mimo_config_parse(text, strlen(text), name, sets, n_sets, spec);
    free(text);
    return rc;
}

/* Reads integer attribute name into *v, which must lie in [lo, hi]. */
static int read_count(hid_t f, const char *path, const char *name, int64_t lo,
                      int64_t hi, int64_t *v)
{
    int rc = mimo_h5_attr_read_i64(f, path, name, v);
    if (!rc && (*v < lo || *v > hi))
        rc = mimo_error(MIMO_EINVAL, "%s: attribute '%s' = %lld is out of range "
                        "[%lld, %lld]: the file is damaged", path, name,
                        (long long)*v, (long long)lo, (long long)hi);
    return rc;
}

static int read_state(hid_t f, const char *path, mimo_ckpt_state *st)
{
    int64_t seed = 0;
    char *lin = NULL;
    int rc = read_count(f, path, "epoch", 0, MIMO_CKPT_MAX_EPOCH, &st->epoch);
    if (!rc) rc = read_count(f, path, "step", 0, MIMO_CKPT_MAX_EPOCH, &st->step);
    if (!rc) rc = read_count(f, path, "global_step", 0, MIMO_CKPT_MAX_COUNT, &st->global_step);
    if (!rc) rc = read_count(f, path, "samples_seen", 0, MIMO_CKPT_MAX_COUNT, &st->samples_seen);
    if (!rc) rc = read_count(f, path, "world_size", 0, 1 << 24, &st->world_size);
    if (!rc) rc = mimo_h5_attr_read_i64(f, path, "rng_seed", &seed);
    if (!rc) rc = mimo_h5_attr_read_f64(f, path, "lr", &st->lr);
    if (!rc && !(isfinite(st->lr) && st->lr >= 0))
        rc = mimo_error(MIMO_EINVAL, "%s: attribute 'lr' = %g is not a learning "
                        "rate: the file is damaged", path, st->lr);
    if (!rc && (st->global_step < st->epoch + st->step ||
                st->samples_seen < st->global_step))
        rc = mimo_error(MIMO_EINVAL, "%s: inconsistent position (epoch %lld, step "
                        "%lld, global_step %lld, samples_seen %lld: every epoch has "
                        "a step and every step a sample): the file is damaged", path,
                        (long long)st->epoch, (long long)st->step,
                        (long long)st->global_step, (long long)st->samples_seen);
    st->seed = (uint64_t)seed;
    st->lineage[0] = '\0';
    if (!rc && H5Aexists(f, "lineage") > 0 &&
        !(rc = mimo_h5_attr_read_str(f, path, "lineage", &lin)))
        snprintf(st->lineage, sizeof st->lineage, "%s", lin);
    free(lin);
    for (int i = 0; i < st->n_extra && !rc; i++) /* the names asked for */
        if (H5Aexists(f, st->extra[i].name) > 0)
            rc = mimo_h5_attr_read_f64(f, path, st->extra[i].name, &st->extra[i].value);
    char name[MIMO_CKPT_NAME_MAX + 8];
    for (int i = 0; i < st->n_array && !rc; i++) {
        mimo_ckpt_array *a = &st->array[i];
        snprintf(name, sizeof name, "state/%s", a->name);
        a->n = 0;
        if (mimo_h5_exists(f, name)) {
            free(a->v);
            a->v = NULL;
            rc = mimo_h5_read_f64(f, path, name, &a->v, &a->n);
        }
    }
    return rc;
}

static int read_optimizer(hid_t f, const char *path, mimo_model *m)
{
    mimo_optim *o = mimo_model_optim(m);
    char group[128];
    int64_t steps = 0;
    hid_t grp = mimo_h5_exists(f, "optimizer") ? H5Gopen2(f, "optimizer", H5P_DEFAULT) : -1;
    if (grp < 0)
        return mimo_error(MIMO_EINVAL, "%s: no /optimizer group", path);
    int rc = read_count(grp, path, "steps", 0, MIMO_CKPT_MAX_COUNT, &steps);
    H5Gclose(grp);
    for (int k = 0; k < mimo_optim_n_slots(o) && !rc; k++) {
        snprintf(group, sizeof group, "optimizer/%s", mimo_optim_slot_name(o, k));
        rc = read_tensors(f, path, group, mimo_model_graph(m), mimo_optim_slot(o, k), 1, 0);
    }
    if (!rc)
        mimo_optim_set_steps(o, steps);
    return rc;
}

int mimo_checkpoint_load(const char *path, mimo_model *m, mimo_ckpt_state *st,
                         mimo_real *best, int *has_best)
{
    hid_t f = open_checkpoint(path);
    if (f < 0)
        return (int)f;
    int rc = read_tensors(f, path, "params", mimo_model_graph(m), mimo_model_params(m), 0, 0);
    if (!rc)
        rc = read_optimizer(f, path, m);
    if (!rc && st)
        rc = read_state(f, path, st);
    if (has_best)
        *has_best = 0;
    if (!rc && best && mimo_h5_exists(f, "best_params")) {
        rc = read_tensors(f, path, "best_params", mimo_model_graph(m), best, 0, 0);
        if (has_best)
            *has_best = !rc;
    }
    H5Fclose(f);
    return rc;
}

int mimo_checkpoint_init_params(const char *path, mimo_model *m)
{
    hid_t f = mimo_h5_open_read(path, H5P_DEFAULT);
    if (f < 0)
        return (int)f;
    int rc = read_tensors(f, path, "params", mimo_model_graph(m), mimo_model_params(m), 0, 1);
    H5Fclose(f);
    return rc;
}

/* The graph's layer the file's layer `file` is read for: its new name
 * under a rename "file=new", else the same. */
static const char *renamed(const char *const *rename, int n, const char *file,
                           char *buf, size_t len)
{
    for (int k = 0; k < n; k++) {
        const char *eq = strchr(rename[k], '=');
        if (eq && (size_t)(eq - rename[k]) == strlen(file) &&
            strncmp(rename[k], file, strlen(file)) == 0) {
            snprintf(buf, len, "%s", eq + 1);
            return buf;
        }
    }
    return file;
}

/* The reverse: the file's layer read for the graph's `layer`. */
static const char *file_layer(const char *const *rename, int n, const char *layer,
                              char *buf, size_t len)
{
    for (int k = 0; k < n; k++) {
        const char *eq = strchr(rename[k], '=');
        if (eq && strcmp(eq + 1, layer) == 0) {
            snprintf(buf, len, "%.*s", (int)(eq - rename[k]), rename[k]);
            return buf;
        }
    }
    return layer;
}

typedef struct {
    const mimo_graph *g;
    const char *layer;       /* the group being walked, or NULL at /params */
    const char *const *rename;
    int n_rename;
    mimo_init_report report; /* each unused entry to it, or ... */
    void *user;
    char *buf;               /* ... their names into buf */
    size_t len, used;
    int n;
} unused_walk;

/* Whether g has a tensor named layer/name (any tensor: name NULL). */
static int graph_has(const mimo_graph *g, const char *layer, const char *name)
{
    for (int t = 0; t < mimo_graph_n_tensors(g); t++) {
        mimo_param_info p = mimo_graph_tensor(g, t);
        if (strcmp(p.layer, layer) == 0 && (!name || strcmp(p.name, name) == 0))
            return 1;
    }
    return 0;
}

static void unused_add(unused_walk *w, const char *layer, const char *name)
{
    char full[512];
    w->n++;
    if (w->report) {
        snprintf(full, sizeof full, "%s%s%s", layer, name ? "/" : "", name ? name : "");
        w->report(w->user, full, MIMO_INIT_UNUSED, "", "");
        return;
    }
    if (w->n > 1 && w->used + 2 < w->len)
        w->used += (size_t)snprintf(w->buf + w->used, w->len - w->used, ", ");
    if (w->used + 1 < w->len)
        w->used += (size_t)snprintf(w->buf + w->used, w->len - w->used, "%s%s%s",
                                    layer, name ? "/" : "", name ? name : "");
    if (w->used >= w->len)
        w->used = w->len - 1;
}

static herr_t unused_visit(hid_t grp, const char *name, const H5L_info_t *info,
                           void *u)
{
    unused_walk *w = u;
    char buf[256];
    (void)info;
    if (w->layer) { /* inside /params/<layer>: a tensor */
        if (!graph_has(w->g, renamed(w->rename, w->n_rename, w->layer, buf, sizeof buf),
                       name))
            unused_add(w, w->layer, name);
        return 0;
    }
    H5O_info_t oi;
    if (H5Oget_info_by_name(grp, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_GROUP ||
        !graph_has(w->g, renamed(w->rename, w->n_rename, name, buf, sizeof buf), NULL)) {
        unused_add(w, name, NULL); /* no such layer */
        return 0;
    }
    hid_t sub = H5Gopen2(grp, name, H5P_DEFAULT);
    if (sub >= 0) {
        hsize_t idx = 0;
        w->layer = name;
        H5Literate(sub, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, unused_visit, w);
        w->layer = NULL;
        H5Gclose(sub);
    }
    return 0;
}

/* Walks path's /params for what g does not read (w's g, rename and
 * report or buffer set); f open on path. */
static void walk_unused(hid_t f, unused_walk *w)
{
    hid_t grp = f >= 0 && mimo_h5_exists(f, "params") ? H5Gopen2(f, "params", H5P_DEFAULT) : -1;
    if (grp >= 0) {
        hsize_t idx = 0;
        H5Literate(grp, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, unused_visit, w);
        H5Gclose(grp);
    }
}

int mimo_checkpoint_unused_params(const char *path, const mimo_graph *g, char *names,
                                  size_t len)
{
    mimo_error_saved keep;
    mimo_error_save(&keep);
    unused_walk w = {.g = g, .buf = names, .len = len};
    if (len)
        names[0] = '\0';
    hid_t f = mimo_h5_open_read(path, H5P_DEFAULT);
    walk_unused(f, &w);
    if (f >= 0)
        H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    mimo_error_restore(&keep, 0);
    return w.n;
}

/* Each rename "old=new" names a layer of the file's /params and a layer of
 * g with parameters. */
static int check_renames(hid_t f, const char *path, const mimo_graph *g,
                         const char *const *rename, int n)
{
    char name[512];
    for (int k = 0; k < n; k++) {
        const char *eq = strchr(rename[k], '=');
        if (!eq || eq == rename[k] || !eq[1])
            return mimo_error(MIMO_EINVAL, "--init-map '%s': expected OLD=NEW (a "
                              "layer of the file, a layer of this network)", rename[k]);
        snprintf(name, sizeof name, "params/%.*s", (int)(eq - rename[k]), rename[k]);
        if (!mimo_h5_exists(f, name))
            return mimo_error(MIMO_EINVAL, "--init-map '%s': %s has no layer '%.*s' "
                              "under /params", rename[k], path, (int)(eq - rename[k]),
                              rename[k]);
        if (!graph_has(g, eq + 1, NULL))
            return mimo_error(MIMO_EINVAL, "--init-map '%s': this network has no "
                              "layer '%s' with parameters", rename[k], eq + 1);
    }
    return 0;
}

/* One tensor of the graph by name: loaded, new or a shape mismatch. */
static int init_one(hid_t f, const char *path, const mimo_param_info *p,
                    const char *const *rename, int n_rename, mimo_real *params,
                    mimo_init_report report, void *user, int *loaded)
{
    char name[512], buf[256], want[96], got[96] = "", full[512];
    mimo_shape s;
    int rc = 0;
    mimo_init_status st = MIMO_INIT_NEW;
    snprintf(name, sizeof name, "params/%s/%s",
             file_layer(rename, n_rename, p->layer, buf, sizeof buf), p->name);
    py_shape(&p->shape, want, sizeof want);
    if (mimo_h5_exists(f, name)) {
        if ((rc = mimo_h5_tensor_shape(f, path, name, &s)))
            return rc;
        if (same_shape(&s, &p->shape)) {
            if ((rc = read_one(f, path, name, p, params, 1)))
                return rc;
            st = MIMO_INIT_LOADED, (*loaded)++;
        } else {
            st = MIMO_INIT_MISMATCH;
            py_shape(&s, got, sizeof got);
        }
    }
    snprintf(full, sizeof full, "%s/%s", p->layer, p->name);
    if (report)
        report(user, full, st, want, got);
    return 0;
}

int mimo_checkpoint_init_by_name(const char *path, mimo_model *m,
                                 const char *const *rename, int n_rename,
                                 mimo_init_report report, void *user)
{
    const mimo_graph *g = mimo_model_graph(m);
    hid_t f = mimo_h5_open_read(path, H5P_DEFAULT);
    if (f < 0)
        return (int)f;
    int rc = check_renames(f, path, g, rename, n_rename), loaded = 0;
    for (int t = 0; t < mimo_graph_n_tensors(g) && !rc; t++) {
        mimo_param_info p = mimo_graph_tensor(g, t);
        rc = init_one(f, path, &p, rename, n_rename, mimo_model_params(m), report,
                      user, &loaded);
    }
    if (!rc) {
        unused_walk w = {.g = g, .rename = rename, .n_rename = n_rename,
                         .report = report, .user = user};
        walk_unused(f, &w);
        H5Eclear2(H5E_DEFAULT);
    }
    if (!rc && !loaded)
        rc = mimo_error(MIMO_EINVAL, "%s: no tensor under /params matches a layer "
                        "and tensor of this network in name and shape", path);
    H5Fclose(f);
    return rc;
}

int mimo_checkpoint_position(const char *path, int64_t *epoch, int64_t *step,
                             int64_t *global_step)
{
    hid_t f = open_checkpoint(path);
    if (f < 0)
        return (int)f;
    int rc = read_count(f, path, "epoch", 0, MIMO_CKPT_MAX_EPOCH, epoch);
    if (!rc)
        rc = read_count(f, path, "step", 0, MIMO_CKPT_MAX_EPOCH, step);
    if (!rc)
        rc = read_count(f, path, "global_step", 0, MIMO_CKPT_MAX_COUNT, global_step);
    H5Fclose(f);
    return rc;
}

int mimo_checkpoint_lineage(const char *path, int64_t *global_step, char *lineage,
                            size_t len)
{
    char *lin = NULL;
    mimo_error_saved keep;
    mimo_error_save(&keep);
    hid_t f = open_checkpoint(path);
    int ok = f >= 0;
    if (ok) {
        ok = read_count(f, path, "global_step", 0, MIMO_CKPT_MAX_COUNT,
                        global_step) == 0 &&
             mimo_h5_exists(f, "params") && mimo_h5_exists(f, "config");
        if (lineage && len) {
            lineage[0] = '\0';
            if (ok && H5Aexists(f, "lineage") > 0 &&
                !mimo_h5_attr_read_str(f, path, "lineage", &lin))
                snprintf(lineage, len, "%s", lin);
            free(lin);
        }
        H5Fclose(f);
    }
    mimo_error_restore(&keep, 0);
    return ok;
}

int mimo_checkpoint_marked(const char *path)
{
    char *fmt = NULL;
    mimo_error_saved keep;
    mimo_error_save(&keep);
    hid_t f = mimo_h5_open_read(path, H5P_DEFAULT);
    int ours = f >= 0 && H5Aexists(f, "format") > 0 &&
               !mimo_h5_attr_read_str(f, path, "format", &fmt) &&
               strcmp(fmt, "mimo-checkpoint") == 0;
    free(fmt);
    if (f >= 0)
        H5Fclose(f);
    mimo_error_restore(&keep, 0);
    return ours;
}

int mimo_checkpoint_probe(const char *path, int64_t *global_step)
{
    return mimo_checkpoint_lineage(path, global_step, NULL, 0);
}
