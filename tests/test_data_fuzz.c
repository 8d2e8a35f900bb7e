/* test_data_fuzz.c — hostile dataset files never crash, hang or open
 * without a message. From one valid data file whose datasets use every
 * storage mimo meets (contiguous; chunked with gzip, shuffle and
 * fletcher32; chunked scale-offset integers; a compact one), each case
 * mutates a copy — every dataset reshaped, retyped (int, string,
 * compound), emptied, filled with NaN/Inf or out-of-range values,
 * deleted, made virtual (of itself, of a missing file), external (a
 * device, a short file), chunked and never or partly written, of a huge
 * extent; the file truncated; single bits flipped; runs of bytes
 * overwritten — and opens it in a forked child (alarm: a hang) the way
 * `mimo train` does (mimo_data_open: every check), loaded whole and
 * streamed, then reads every row in shuffled batches through the source.
 * Prints the tally (tried / accepted / a clear error / crash / hang);
 * crash and hang must be 0, and every refusal must leave a message. Under
 * ASan+UBSan (-fno-sanitize-recover) any memory or undefined-behaviour
 * error ends the child with a code counted as a crash.
 *
 * The suite runs ~630 cases (the structural ones on files of both HDF5
 * formats, then 200 flipped bits and 100 overwritten runs); a longer run:
 * MIMO_DATA_FUZZ_CASES=20000 build/tests/test_data_fuzz (the count of
 * random byte cases, the structural ones always run; seed
 * MIMO_DATA_FUZZ_SEED, default fixed) — a failing case prints its
 * description with its index K; MIMO_DATA_FUZZ_ONLY=K (same seed and
 * count) runs only it and leaves its file as ./data-fuzz-case.h5.
 *
 * The random bytes go to a file of the latest format (h5py:
 * libver='latest'), whose metadata HDF5 checksums: 10,000 cases, no
 * crash. In the old format (h5py's default) nothing checks the object
 * headers and filter data, and libhdf5 1.10.8 itself crashes on some
 * damage before mimo sees a value (MIMO_DATA_FUZZ_OLD_FORMAT=1: 2 of 3,000
 * cases, a SIGSEGV in H5Dopen2 decoding a damaged header and one in the
 * scale-offset filter): a limit of the library, not checked by mimo. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/h5_impl.h"
#include "core/model.h"
#include "mimo/mimo.h"

#include "fuzz.h"

static const char *yaml =
    "inputs: {x: {shape: 3}, ids: {shape: 2, dtype: int32}}\n"
    "layers:\n"
    "  e: {type: embedding, input_dim: 10, output_dim: 2, from: ids}\n"
    "  f: {type: flatten, from: e}\n"
    "  c: {type: concat, from: [x, f]}\n"
    "  o: {type: dense, units: 2, from: c}\n"
    "  cls: {type: dense, units: 4, activation: softmax, from: c}\n"
    "  b: {type: dense, units: 1, activation: sigmoid, from: c}\n"
    "outputs:\n"
    "  o: {loss: mse, sample_weight: w}\n"
    "  cls: {loss: sparse_categorical_crossentropy}\n"
    "  b: {loss: binary_crossentropy, missing: nan}\n"
    "train: {optimizer: sgd, batch_size: 7, epochs: 1, seed: 3}\n";

enum { N = 200 };
static const char *const names[] = {"x", "ids", "o", "w", "cls", "b"};
enum { N_NAMES = 6 };

static char dir[256], base[300], work[300], side[300];
static fuzz_tally tally;

static int read_all(const mimo_graph *g, mimo_data *d)
{
    mimo_source s = mimo_data_source(d);
    int n_in = mimo_graph_n_inputs(g), nh = mimo_graph_n_heads(g), rc = 0;
    mimo_real *in[8] = {0}, *tgt[16] = {0};
    int B = mimo_graph_max_batch(g);
    for (int i = 0; i < n_in; i++)
        in[i] = calloc((size_t)B * (size_t)mimo_graph_input_width(g, i), sizeof(mimo_real));
    for (int h = 0; h < nh; h++) {
        tgt[h] = calloc((size_t)B * (size_t)mimo_graph_head_target_width(g, h),
                        sizeof(mimo_real));
        tgt[nh + h] = calloc((size_t)B, sizeof(mimo_real));
    }
    uint64_t *order = malloc(sizeof *order * s.rows);
    for (size_t r = 0; r < s.rows; r++)
        order[r] = r;
    for (size_t r = s.rows; r > 1; r--) { /* a fixed shuffle */
        size_t j = (r * 2654435761u) % r;
        uint64_t t = order[r - 1];
        order[r - 1] = order[j], order[j] = t;
    }
    for (size_t r = 0; r < s.rows && !rc; r += (size_t)B) {
        int b = s.rows - r < (size_t)B ? (int)(s.rows - r) : B;
        if (s.prefetch && r + (size_t)B < s.rows)
            s.prefetch(s.ctx, order + r + B,
                       s.rows - r - (size_t)B < (size_t)B ? (int)(s.rows - r) - B : B);
        rc = s.read(s.ctx, order + r, b, in, tgt);
    }
    free(order);
    for (int i = 0; i < 16; i++)
        free(i < 8 ? in[i] : NULL), free(tgt[i]);
    return rc;
}

static void child(void *unused)
{
    (void)unused;
    fuzz_child_begin(60);
    mimo_spec spec;
    mimo_graph *g = NULL;
    int rc = mimo_config_parse(yaml, strlen(yaml), "fuzz.yaml", NULL, 0, &spec);
    if (!rc)
        rc = mimo_graph_compile(&spec, (int)spec.train.batch_size, 0, &g);
    if (rc)
        _exit(98);
    for (int whole = 1; whole >= 0 && !rc; whole--) {
        /* spec is what the graph points to: the limit picks whole or streamed */
        ((mimo_spec *)mimo_graph_spec(g))->data.memory_limit_mb = whole ? 1024 : 1e-3;
        mimo_data *d = NULL;
        rc = mimo_data_open(work, g, MIMO_DATA_TRAIN, MPI_COMM_NULL, &d);
        if (!rc) {
            rc = read_all(g, d);
            mimo_data_close(&d);
        }
    }
    mimo_graph_free(&g);
    mimo_spec_free(&spec);
    if (rc < 0 && !mimo_errmsg()[0])
        _exit(FUZZ_MUTE); /* an error must say what */
    _exit(rc == 0 ? FUZZ_ACCEPTED : FUZZ_REJECTED);
}

static void run_case(const char *what) { fuzz_run(&tally, child, NULL, what); }

/* ---- the base file ----------------------------------------------------------- */

static void put(hid_t f, const char *name, hid_t ftype, hid_t mtype, int rank,
                const hsize_t *dims, hid_t dcpl, const void *v)
{
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (v && d >= 0) /* the base file is checked by opening it unchanged */
        H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(s);
}

static hid_t chunked(int rank, hsize_t rows, hsize_t cols)
{
    hid_t p = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t c[2] = {rows, cols};
    H5Pset_chunk(p, rank, c);
    return p;
}

/* x: contiguous float32; ids: chunked scale-offset int32; o: chunked
 * shuffle+gzip+fletcher32 float64; w: compact float32; cls: chunked gzip
 * int32; b: chunked fletcher32 float32 with a NaN (an unlabelled row). */
static void write_base(int old_format)
{
    float x[N * 3], w[N], b[N];
    int32_t ids[N * 2], cls[N];
    double o[N * 2];
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 3; k++)
            x[i * 3 + k] = (float)sin(i * 0.7 + k);
        for (int k = 0; k < 2; k++) {
            ids[i * 2 + k] = (i * 7 + k) % 10;
            o[i * 2 + k] = cos(i * 0.3 + k);
        }
        w[i] = (float)(i % 3);
        cls[i] = i % 4;
        b[i] = i == 5 ? NAN : (float)(i % 2);
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (!old_format) /* checksummed metadata: damage is found, not parsed */
        H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(base, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    hsize_t d2[2] = {N, 3}, d1[1] = {N};
    put(f, "x", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d2, H5P_DEFAULT, x);
    hid_t p = chunked(2, 32, 2);
    H5Pset_scaleoffset(p, H5Z_SO_INT, H5Z_SO_INT_MINBITS_DEFAULT);
    d2[1] = 2;
    put(f, "ids", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, d2, p, ids);
    H5Pclose(p);
    p = chunked(2, 16, 2);
    H5Pset_shuffle(p);
    H5Pset_deflate(p, 4);
    H5Pset_fletcher32(p);
    put(f, "o", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d2, p, o);
    H5Pclose(p);
    p = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_layout(p, H5D_COMPACT);
    put(f, "w", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, d1, p, w);
    H5Pclose(p);
    p = chunked(1, 50, 0);
    H5Pset_deflate(p, 1);
    put(f, "cls", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, d1, p, cls);
    H5Pclose(p);
    p = chunked(2, 64, 1);
    H5Pset_fletcher32(p);
    d2[1] = 1;
    put(f, "b", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, d2, p, b);
    H5Pclose(p);
    H5Fclose(f);
}

/* ---- structural mutations ---------------------------------------------------- */

enum {
    M_DELETE, M_RESHAPE, M_RANK3, M_RANK5, M_EMPTY, M_ROWS, M_INT, M_STRING,
    M_COMPOUND, M_NAN, M_INF, M_BIG, M_NEG, M_HALF, M_VDS_SELF, M_VDS_MISSING,
    M_VDS_HALF, M_EXT_DEV, M_EXT_SHORT, M_UNWRITTEN, M_PARTLY, M_PARTLY_FILL,
    M_HUGE_FILL, M_GROUP, M_SCALAR, M_COUNT
};

/* The original's shape. */
static int shape_of(hid_t f, const char *name, hsize_t *dims)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), s = H5Dget_space(d);
    int r = H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    H5Dclose(d);
    return r;
}

static void fill(double *v, size_t n, double x)
{
    for (size_t i = 0; i < n; i++)
        v[i] = x;
}

static void virtual_of(hid_t f, const char *name, int rank, const hsize_t *dims,
                       const char *src_file, const char *src_name, hsize_t rows)
{
    hid_t p = H5Pcreate(H5P_DATASET_CREATE), vs = H5Screate_simple(rank, dims, NULL);
    hid_t ss = H5Screate_simple(rank, dims, NULL);
    hsize_t start[4] = {0}, count[4];
    memcpy(count, dims, sizeof(hsize_t) * (size_t)rank);
    count[0] = rows;
    H5Sselect_hyperslab(vs, H5S_SELECT_SET, start, NULL, count, NULL);
    H5Sselect_hyperslab(ss, H5S_SELECT_SET, start, NULL, count, NULL);
    H5Pset_virtual(p, vs, src_file, src_name, ss);
    H5Sselect_all(vs);
    hid_t d = H5Dcreate2(f, name, H5T_IEEE_F32LE, vs, H5P_DEFAULT, p, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(ss);
    H5Sclose(vs);
    H5Pclose(p);
}

static void mutate(const char *name, int kind)
{
    fuzz_copy_file(base, work);
    hid_t f = H5Fopen(work, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hsize_t dims[4] = {0}, nd[5];
    int r = shape_of(f, name, dims);
    size_t n = 1;
    for (int k = 0; k < r; k++)
        n *= (size_t)dims[k];
    double *v = calloc(n * 4 + 16, sizeof *v);
    fill(v, n * 4 + 16, 0.5);
    H5Ldelete(f, name, H5P_DEFAULT);
    memcpy(nd, dims, sizeof dims);
    nd[1] = r > 1 ? dims[1] : 1;
    hid_t p = H5P_DEFAULT;
    switch (kind) {
    case M_DELETE: break;
    case M_RESHAPE: nd[1] += 1; put(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, nd, p, v); break;
    case M_RANK3: nd[2] = 1; put(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, nd, p, v); break;
    case M_RANK5:
        nd[2] = nd[3] = nd[4] = 1;
        put(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 5, nd, p, v);
        break;
    case M_EMPTY: nd[0] = 0; put(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, r, nd, p, v); break;
    case M_ROWS: nd[0] += 1; put(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, r, nd, p, v); break;
    case M_INT: put(f, name, H5T_STD_I8LE, H5T_NATIVE_DOUBLE, r, nd, p, v); break;
    case M_STRING: {
        hid_t st = H5Tcopy(H5T_C_S1);
        H5Tset_size(st, 4);
        char *s = calloc(n, 4);
        put(f, name, st, st, r, dims, p, s);
        free(s);
        H5Tclose(st);
        break;
    }
    case M_COMPOUND: {
        hid_t ct = H5Tcreate(H5T_COMPOUND, sizeof(double));
        H5Tinsert(ct, "v", 0, H5T_NATIVE_DOUBLE);
        put(f, name, ct, ct, r, dims, p, v);
        H5Tclose(ct);
        break;
    }
    case M_NAN: case M_INF: case M_BIG: case M_NEG: case M_HALF:
        fill(v, n, kind == M_NAN ? NAN : kind == M_INF ? -INFINITY : kind == M_BIG ? 1e300
                   : kind == M_NEG ? -3 : 0.5);
        v[n / 2] = kind == M_HALF ? 2.5 : v[n / 2];
        put(f, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, r, dims, p, v);
        break;
    case M_VDS_SELF: virtual_of(f, name, r, dims, ".", name, dims[0]); break;
    case M_VDS_MISSING: virtual_of(f, name, r, dims, "nowhere.h5", "x", dims[0]); break;
    case M_VDS_HALF: {
        hid_t g = H5Fcreate(side, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        put(g, "x", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, r, dims, H5P_DEFAULT, v);
        H5Fclose(g);
        virtual_of(f, name, r, dims, side, "x", dims[0] / 2);
        break;
    }
    case M_EXT_DEV: case M_EXT_SHORT: {
        p = H5Pcreate(H5P_DATASET_CREATE);
        if (kind == M_EXT_SHORT) {
            FILE *e = fopen(side, "wb");
            fwrite(v, 1, n * 2, e);
            fclose(e);
        }
        H5Pset_external(p, kind == M_EXT_DEV ? "/dev/zero" : side, 0, n * 4);
        put(f, name, H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, r, dims, p, NULL);
        break;
    }
    case M_UNWRITTEN: case M_PARTLY: case M_PARTLY_FILL: case M_HUGE_FILL: {
        p = chunked(r, 10, nd[1]);
        H5Pset_deflate(p, 1);
        if (kind == M_PARTLY_FILL || kind == M_HUGE_FILL) {
            double fv = 0.5;
            H5Pset_fill_value(p, H5T_NATIVE_DOUBLE, &fv);
        }
        if (kind == M_HUGE_FILL)
            nd[0] = ((hsize_t)1 << 32) - 1;
        hid_t s = H5Screate_simple(r, nd, NULL);
        hid_t d = H5Dcreate2(f, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, p, H5P_DEFAULT);
        if (kind == M_PARTLY || kind == M_PARTLY_FILL) {
            hsize_t start[2] = {0, 0}, cnt[2] = {dims[0] / 2, nd[1]};
            hid_t ms = H5Screate_simple(r, cnt, NULL);
            H5Sselect_hyperslab(s, H5S_SELECT_SET, start, NULL, cnt, NULL);
            H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, s, H5P_DEFAULT, v);
            H5Sclose(ms);
        }
        H5Dclose(d);
        H5Sclose(s);
        break;
    }
    case M_GROUP: H5Gclose(H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)); break;
    default: { /* a scalar */
        hid_t s = H5Screate(H5S_SCALAR);
        hid_t d = H5Dcreate2(f, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        H5Dclose(d);
        H5Sclose(s);
    }
    }
    if (p != H5P_DEFAULT)
        H5Pclose(p);
    free(v);
    H5Fclose(f);
}

/* ---- the test ------------------------------------------------------------------ */

static int setup(void **s)
{
    (void)s;
    struct stat sb; /* tmpfs when there is one */
    snprintf(dir, sizeof dir, "%s/mimo-test-dfuzz-XXXXXX",
             stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    snprintf(base, sizeof base, "%s/base.h5", dir);
    snprintf(work, sizeof work, "%s/work.h5", dir);
    snprintf(side, sizeof side, "%s/side.bin", dir);
    return 0;
}

static int teardown(void **s)
{
    (void)s;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

static void test_fuzz(void **s)
{
    (void)s;
    char text[256];
    mimo_h5_quiet();
    /* the structural mutations on both formats (what h5py writes by
     * default, and the latest, with checksummed metadata) */
    for (int fmt = 0; fmt < 2; fmt++) {
        write_base(fmt == 0);
        fuzz_copy_file(base, work); /* the unchanged file opens and reads */
        int was = tally.accepted;
        run_case(fmt == 0 ? "unchanged (old format)" : "unchanged");
        assert_int_equal(tally.accepted, was + 1);
        for (int i = 0; i < N_NAMES; i++)
            for (int kind = 0; kind < M_COUNT; kind++) {
                mutate(names[i], kind);
                snprintf(text, sizeof text, "dataset %s mutation %d%s", names[i], kind,
                         fmt == 0 ? " (old format)" : "");
                run_case(text);
            }
    }
    /* the bytes of a latest-format file (MIMO_DATA_FUZZ_OLD_FORMAT=1: of
     * the old format, whose unchecksummed headers libhdf5 1.10 may crash
     * on: see the header) */
    if (env_long("MIMO_DATA_FUZZ_OLD_FORMAT", 0))
        write_base(1);
    /* truncations, flipped bits, overwritten runs of bytes */
    struct stat sb;
    assert_int_equal(stat(base, &sb), 0);
    size_t len = (size_t)sb.st_size;
    FILE *f = fopen(base, "rb");
    unsigned char *img = malloc(len), *keep = malloc(len);
    assert_int_equal(fread(img, 1, len, f), len);
    fclose(f);
    memcpy(keep, img, len);
    for (int k = 1; k <= 24; k++) {
        size_t cut = len * (size_t)k / 25;
        f = fopen(work, "wb");
        fwrite(img, 1, cut, f);
        fclose(f);
        snprintf(text, sizeof text, "truncated to %zu of %zu bytes", cut, len);
        run_case(text);
    }
    long cases = env_long("MIMO_DATA_FUZZ_CASES", 300);
    long only = env_long("MIMO_DATA_FUZZ_ONLY", -1);
    uint64_t r = (uint64_t)env_long("MIMO_DATA_FUZZ_SEED", 0x5eed) * 0x9e3779b97f4a7c15ULL | 1;
    for (long k = 0; k < cases; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        size_t at = (size_t)(r % (uint64_t)len);
        if (k % 3 != 2) { /* a flipped bit */
            int bit = (int)((r >> 40) % 8);
            img[at] ^= (unsigned char)(1u << bit);
            snprintf(text, sizeof text, "case %ld: bit %d of byte %zu flipped", k, bit, at);
        } else { /* a run of 1-16 bytes: random, zeros or 0xff */
            size_t run = 1 + (size_t)((r >> 20) % 16);
            int how = (int)((r >> 28) % 3);
            uint64_t x = r;
            for (size_t j = at; j < at + run && j < len; j++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                img[j] = how == 0 ? (unsigned char)x : how == 1 ? 0 : 0xff;
            }
            snprintf(text, sizeof text, "case %ld: %zu bytes at %zu set (%s)", k, run,
                     at, how == 0 ? "random" : how == 1 ? "zeros" : "0xff");
        }
        f = fopen(work, "wb");
        fwrite(img, 1, len, f);
        fclose(f);
        memcpy(img, keep, len);
        if (only < 0 || k == only)
            run_case(text);
        if (k == only) /* kept for a debugger: mimo train on it, or gdb */
            fuzz_copy_file(work, "data-fuzz-case.h5");
    }
    free(img);
    free(keep);
    printf("data fuzz: tried %d, %d accepted, %d a clear error, crash %d, hang %d, "
           "error without a message %d\n", tally.tried, tally.accepted, tally.rejected,
           tally.crash, tally.hang, tally.mute);
    assert_int_equal(tally.crash, 0);
    assert_int_equal(tally.hang, 0);
    assert_int_equal(tally.mute, 0);
    assert_int_equal(tally.wrong, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fuzz)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
