/* bench.c — the measurements of `mimo bench` (see mimo/bench.h). Each
 * step is `mimo train`'s: the global batch's rows in the epoch's shuffled
 * order gathered through a data source, losses and metrics summed as
 * training sums them, the next batch prefetched and the step-late vote.
 * The data are a file (--data: opened as mimo train opens data.train) or
 * random rows of the right shapes made in memory on every rank (the same
 * rows everywhere), read through the same gather. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, getrusage */
#include "mimo/bench.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "base/clock.h"
#include "comm/stall.h"
#include "core/bf16.h"
#include "core/kind.h"
#include "io/checkpoint_impl.h"
#include "core/model.h"
#include "mimo/dataset.h"
#include "mimo/fit.h"
#include "comm/dist.h"
#include "mimo/error.h"
#include "mimo/rng.h"
#include "comm/trace.h"
#include "mimo/trainer.h"
#include "train/teardown.h"

_Static_assert(MIMO_BENCH_PHASES == MIMO_N_PHASES,
               "mimo_bench_result.phase has one entry per mimo_phase");

/* GFLOP/s of a square sgemm at this thread count (best of 3). */
static double sgemm_rate(void)
{
    const int n = 1024;
    mimo_real *a = malloc(sizeof *a * n * n), *b = malloc(sizeof *b * n * n),
              *c = malloc(sizeof *c * n * n);
    double best = 0;
    if (a && b && c) {
        for (int i = 0; i < n * n; i++)
            a[i] = (mimo_real)(i % 7) / 7, b[i] = (mimo_real)(i % 5) / 5;
        for (int rep = 0; rep < 4; rep++) {
            double t = mimo_clock();
            MIMO_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n,
                      b, n, 0, c, n);
            double r = 2.0 * n * n * n / (mimo_clock() - t) / 1e9;
            best = rep && r > best ? r : best; /* the first call warms up */
        }
    }
    free(a), free(b), free(c);
    return best;
}

/* GFLOP/s of the same product in bf16 with float32 accumulation (oneDNN's
 * matmul, core/bf16.h; best of 3); 0 without native bf16. */
static double bf16_rate(void)
{
    const int n = 1024;
    mimo_bf16_mm *mm = mimo_bf16_mm_new();
    mimo_real *a = malloc(sizeof *a * n * n), *c = malloc(sizeof *c * n * n);
    mimo_bf16 *ab = malloc(sizeof *ab * n * n), *bb = malloc(sizeof *bb * n * n);
    double best = 0;
    if (mm && a && c && ab && bb) {
        for (int i = 0; i < n * n; i++)
            a[i] = (mimo_real)(i % 7) / 7;
        mimo_bf16_from(ab, a, (size_t)n * n);
        mimo_bf16_from(bb, a, (size_t)n * n);
        for (int rep = 0; rep < 4; rep++) {
            double t = mimo_clock();
            if (mimo_bf16_gemm(mm, 0, 0, n, n, n, ab, n, bb, n, 0, c, n))
                break;
            double r = 2.0 * n * n * n / (mimo_clock() - t) / 1e9;
            best = rep && r > best ? r : best; /* the first call warms up */
        }
    }
    mimo_bf16_mm_free(mm);
    free(a), free(c), free(ab), free(bb);
    return best;
}

/* "bf16 (avx512_bf16)", "float32", or "float32 (bf16 asked for, but ...)" */
static void precision_text(const mimo_graph *g, char *buf, size_t len)
{
    const char *what = NULL;
    int native = mimo_bf16_native(&what);
    if (mimo_graph_bf16(g))
        snprintf(buf, len, "bf16 (%s)", what);
    else if (mimo_graph_spec(g)->train.precision == MIMO_PRECISION_BF16)
        snprintf(buf, len, "float32 (bf16 asked for, but %s)",
                 native ? "the graph runs float32" : what);
    else
        snprintf(buf, len, "float32");
}

/* ---- synthetic data --------------------------------------------------- */

typedef struct {
    int n;
    mimo_array *arr;
    mimo_real **buf;
} synth;

/* Targets that suit the loss; ids in [0, ids) for an id input (ids > 0);
 * else normal values. */
static void fill(mimo_rng *r, mimo_real *x, size_t rows, int cols, mimo_loss l,
                 int classes, long long ids)
{
    for (size_t i = 0; i < rows; i++) {
        int c = (int)mimo_rng_below(r, (uint64_t)(classes > 0 ? classes : 1));
        for (int j = 0; j < cols; j++) {
            mimo_real *v = &x[i * (size_t)cols + (size_t)j];
            *v = ids > 0                   ? (mimo_real)mimo_rng_below(r, (uint64_t)ids)
                 : l == MIMO_LOSS_SPARSE_CCE ? (mimo_real)c
                 : l == MIMO_LOSS_CCE       ? (mimo_real)(j == c)
                 : l == MIMO_LOSS_BCE       ? (mimo_real)(mimo_rng_uniform(r) < 0.5)
                                            : (mimo_real)mimo_rng_normal(r);
        }
    }
}

static int make_data(const mimo_graph *g, size_t rows, synth *s)
{
    mimo_rng r;
    mimo_rng_seed(&r, 12345);
    int ni = mimo_graph_n_inputs(g), nh = mimo_graph_n_heads(g);
    s->arr = calloc((size_t)(ni + 2 * nh), sizeof *s->arr);
    s->buf = calloc((size_t)(ni + 2 * nh), sizeof *s->buf);
    if (!s->arr || !s->buf)
        return mimo_error(MIMO_ENOMEM, "out of memory for bench data");
    for (int i = 0; i < ni + nh; i++) {
        int h = i - ni;
        const mimo_output_spec *o = h >= 0 ? mimo_graph_head_spec(g, h) : NULL;
        int cols = h < 0 ? mimo_graph_input_width(g, i) : mimo_graph_head_target_width(g, h);
        s->buf[i] = malloc(sizeof(mimo_real) * rows * (size_t)cols);
        if (!s->buf[i])
            return mimo_error(MIMO_ENOMEM, "out of memory for bench data");
        long long ids = 0;
        if (h < 0 && mimo_graph_input_ids(g, i, &ids) && ids == 0)
            ids = 100; /* integer ids no layer bounds */
        int wide = h < 0 && mimo_graph_spec(g)->inputs[i].dtype == MIMO_DTYPE_INT64;
        int vals = wide ? (int)mimo_shape_size(mimo_graph_input_shape(g, i)) : cols;
        fill(&r, s->buf[i], rows, vals, o ? o->loss : MIMO_LOSS_MSE,
             o ? mimo_graph_head_units(g, h) : 0, ids);
        for (size_t k = rows * (size_t)vals; wide && k-- > 0;) { /* int64's bytes, */
            int64_t v = (int64_t)s->buf[i][k];      /* from the last (in place) */
            memcpy((char *)s->buf[i] + k * sizeof v, &v, sizeof v);
        }
        s->arr[i] = (mimo_array){h < 0 ? mimo_graph_input_name(g, i)
                                       : (o->target ? o->target : o->name),
                                 s->buf[i], rows, cols};
        s->n = i + 1;
    }
    for (int h = 0; h < nh; h++) { /* sample weights in [0, 2) */
        const char *w = mimo_graph_head_spec(g, h)->sample_weight;
        if (!w)
            continue;
        if (!(s->buf[s->n] = malloc(sizeof(mimo_real) * rows)))
            return mimo_error(MIMO_ENOMEM, "out of memory for bench data");
        for (size_t k = 0; k < rows; k++)
            s->buf[s->n][k] = (mimo_real)(2 * mimo_rng_uniform(&r));
        s->arr[s->n] = (mimo_array){w, s->buf[s->n], rows, 1};
        s->n++;
    }
    return 0;
}

/* ---- the timed loop ------------------------------------------------------- */

typedef struct {
    long done;
    double *marks;   /* time at the end of each step */
    mimo_stats *st;  /* the epoch's sums and metrics, as a run keeps them */
    mimo_dist *dist; /* for the step-late vote, as a run casts it */
} counter;

/* n steps of training over the epochs of src's rows, as `mimo train`
 * runs them (mimo_train_step, the next batch's prefetch, the vote), each
 * step's end time in c->marks. */
static int run_steps(mimo_model *m, const mimo_source *src, counter *c, long n)
{
    size_t B = (size_t)mimo_graph_spec(mimo_model_graph(m))->train.batch_size;
    size_t rows = src->rows;
    long per_epoch = mimo_model_steps_per_epoch(m, rows);
    const uint64_t *order = NULL;
    for (long k = 0; k < n; k++) {
        long e = c->done / per_epoch, step = c->done % per_epoch;
        int verdict, rc;
        if ((step == 0 || !order) && !(order = mimo_model_order(m, rows, e)))
            return MIMO_ENOMEM;
        if (step == 0)
            mimo_stats_reset(c->st);
        size_t start = (size_t)step * B, gb = rows - start < B ? rows - start : B;
        if ((rc = mimo_train_step(m, src, order + start, gb, e, step, c->st)) < 0)
            return rc;
        mimo_train_prefetch(m, src, order, start + B, B); /* the next step's */
        if ((rc = mimo_dist_vote(c->dist, 0, &verdict)))
            return rc;
        c->marks[c->done++] = mimo_clock();
    }
    return 0;
}

/* The per-kind profile: the seconds the graph's clock reads gave each
 * layer's forward and backward over `steps` steps (kernels only: the
 * exchange's layer_done runs outside them), and its matrix products' flops
 * on a slice of `rows` rows, summed per kind (past MIMO_BENCH_MAX_KINDS
 * kinds the rest go to "other"), largest share first. */
static void kind_times(const mimo_graph *g, long steps, int rows,
                       mimo_bench_result *r)
{
    r->n_kinds = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const mimo_node *n = &g->nodes[k];
        double f, b;
        int j = 0;
        if (!n->kind) /* an input */
            continue;
        mimo_graph_layer_time(g, k, &f, &b);
        while (j < r->n_kinds && strcmp(r->kinds[j].kind, n->kind->name) != 0)
            j++;
        if (j == MIMO_BENCH_MAX_KINDS)
            j = MIMO_BENCH_MAX_KINDS - 1, r->kinds[j].kind = "other";
        else if (j == r->n_kinds)
            r->kinds[r->n_kinds++] = (mimo_bench_kind){n->kind->name, 0, 0, 0, 0};
        mimo_bench_kind *q = &r->kinds[j];
        q->layers++;
        q->fwd_s += f / (double)steps, q->bwd_s += b / (double)steps;
        q->flops += (n->kind->flops ? n->kind->flops(g, n) : 0) * rows;
    }
    for (int a = 1; a < r->n_kinds; a++) /* insertion sort, largest first */
        for (int j = a; j > 0 && r->kinds[j].fwd_s + r->kinds[j].bwd_s >
                                     r->kinds[j - 1].fwd_s + r->kinds[j - 1].bwd_s; j--) {
            mimo_bench_kind t = r->kinds[j];
            r->kinds[j] = r->kinds[j - 1], r->kinds[j - 1] = t;
        }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarize(const counter *c, long warmup, long steps, int segments,
                      long batch, mimo_bench_result *r)
{
    double sps[MIMO_BENCH_MAX_SEGMENTS];
    long per = steps / segments;
    for (int k = 0; k < segments; k++) {
        long s0 = warmup + k * per, s1 = s0 + per;
        double t = c->marks[s1 - 1] - c->marks[s0 - 1];
        sps[k] = (double)(per * batch) / t;
    }
    qsort(sps, (size_t)segments, sizeof *sps, cmp_d);
    r->sps_min = sps[0];
    r->sps_max = sps[segments - 1];
    r->sps_median = segments % 2 ? sps[segments / 2]
                                  : (sps[segments / 2 - 1] + sps[segments / 2]) / 2;
    r->step_s = (c->marks[warmup + steps - 1] - c->marks[warmup - 1]) / (double)steps;
}

static double scratch_mb(const mimo_graph *g)
{
    size_t v = 0;
    for (int k = 0; k < g->n_nodes; k++)
        if (g->nodes[k].kind && g->nodes[k].kind->scratch)
            v += g->nodes[k].kind->scratch(g, &g->nodes[k], (size_t)g->max_batch);
    return (double)v * sizeof(mimo_real) / 1048576.0;
}

/* This process's proportional set size (shared pages divided among the
 * processes that map them) in MiB, from Linux's smaps_rollup; 0 if none. */
static double pss_mb(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Pss: %lf kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb / 1024.0;
}

static double model_mb(const mimo_model *mm, const mimo_graph *g, size_t rows)
{
    mimo_model *m = (mimo_model *)mm;
    double n = (double)mimo_model_param_count(m);
    double vals = n * (2 + mimo_optim_n_slots(mimo_model_optim(m)));
    size_t data = 0;
    for (int i = 0; i < mimo_graph_n_inputs(g); i++)
        data += rows * (size_t)mimo_graph_input_width(g, i);
    for (int h = 0; h < mimo_graph_n_heads(g); h++)
        data += rows * (size_t)mimo_graph_head_target_width(g, h);
    double act = 0;
    for (int k = 0; k < g->n_nodes; k++) /* y, z, dz, dy at most */
        act += 4.0 * g->max_batch * g->nodes[k].width;
    return (vals + (double)data + act) * sizeof(mimo_real) / 1048576.0;
}

/* The stall detector's cost in the step: ns per enter + leave pair. */
static double stall_mark_ns(void)
{
    const long n = 1000000;
    double t = mimo_clock();
    for (long i = 0; i < n; i++) {
        mimo_stall_enter(MIMO_STALL_SUM);
        mimo_stall_leave();
    }
    return (mimo_clock() - t) / (double)n * 1e9;
}

/* --strict-precision: bf16 asked for where a rank has no native bf16 is
 * refused, by every rank alike (they agree first, as mimo train does) */
static int strict_precision(const mimo_spec *spec, MPI_Comm comm)
{
    const char *why = NULL;
    int native = mimo_bf16_native(&why), all = native;
    if (spec->train.precision != MIMO_PRECISION_BF16)
        return 0;
    if (comm != MPI_COMM_NULL &&
        MPI_Allreduce(&native, &all, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        return mimo_error(MIMO_EMPI, "the ranks could not agree on train.precision");
    return all ? 0
               : mimo_error(MIMO_EINVAL, "%s: train.precision: bf16 refused "
                            "(--strict-precision): %s",
                            spec->file ? spec->file : "<config>",
                            native ? "a rank's CPU has no native bf16" : why);
}

int mimo_bench(const mimo_spec *spec, const mimo_bench_opts *o,
               mimo_bench_result *r)
{
    memset(r, 0, sizeof *r);
    long warmup = o->warmup > 0 ? o->warmup : 20, steps = o->steps > 0 ? o->steps : 200;
    int segments = o->segments > 0 && o->segments <= MIMO_BENCH_MAX_SEGMENTS
                       ? o->segments : 5;
    if (steps < segments)
        steps = segments;
    mimo_model *m = NULL;
    mimo_dist *d = NULL;
    MPI_Comm comm = MPI_COMM_NULL;
    synth s = {0};
    mimo_stats st = {0};
    counter c = {0, malloc(sizeof(double) * (size_t)(warmup + steps + 1)), &st, NULL};
    int rc = mimo_comm_dup(o->comm, &comm); /* collective: first of all */
    if (!rc && o->strict_precision)
        rc = strict_precision(spec, comm);
    if (!rc)
        rc = c.marks && !mimo_stats_init(&st, spec->n_outputs)
                 ? mimo_model_create(spec, &m)
                 : mimo_error(MIMO_ENOMEM, "out of memory");
    mimo_graph *g = m ? mimo_model_graph(m) : NULL;
    size_t rows = o->rows > 0 ? (size_t)o->rows : (size_t)spec->train.batch_size * 8;
    mimo_data *file = NULL;
    mimo_source src;
    if (!rc && o->data) { /* as mimo train opens data.train */
        if (!(rc = mimo_data_open(o->data, g, MIMO_DATA_TRAIN, comm, &file))) {
            src = mimo_data_source(file);
            rows = src.rows;
        }
    } else if (!rc && !(rc = make_data(g, rows, &s))) {
        rc = mimo_arrays_source(m, &(mimo_dataset){s.arr, s.n}, 1, &src);
    }
    mimo_trace *trace = NULL;
    int rank = 0;
    if (comm != MPI_COMM_NULL)
        MPI_Comm_rank(comm, &rank);
    if (!rc && o->trace_path)
        rc = mimo_trace_create(rank, 1u << 20, &trace);
    if (!rc)
        rc = mimo_dist_create(comm, mimo_model_trained_count(m), &o->dist, trace, &d);
    if (o->dist.dense_embeddings) /* one process too (local, not local_rows) */
        mimo_model_dense_tables(m);
    c.dist = d;
    if (!rc && !(rc = mimo_dist_attach(d, m))) {
        r->rows = (long)rows;
        r->streamed = file && !mimo_data_in_memory(file);
        r->ranks = mimo_dist_size(d);
        r->allreduce = mimo_dist_mode(d);
        r->exchange = mimo_model_exchange(m)->ops->name;
#ifdef _OPENMP
        r->threads = omp_get_max_threads();
#else
        r->threads = 1;
#endif
        r->sgemm_gflops = sgemm_rate();
        r->bf16_gflops = bf16_rate();
        r->bf16 = mimo_graph_bf16(g);
        precision_text(g, r->precision, sizeof r->precision);
        r->stall_warn = o->stall_warn < 0 ? 0 : o->stall_warn > 0 ? o->stall_warn : MIMO_STALL_WARN_DEFAULT;
        mimo_stall_opts so = {.warn_s = r->stall_warn};
        if (r->stall_warn > 0)
            rc = mimo_stall_start(comm, &so);
        if (!rc)
            rc = run_steps(m, &src, &c, warmup);
        double t[MIMO_N_PHASES];
        mimo_dist_times(d, t, 1);
        if (!rc && comm != MPI_COMM_NULL && MPI_Barrier(comm) != MPI_SUCCESS)
            rc = mimo_error(MIMO_EMPI, "MPI_Barrier failed");
        unsigned long seq0 = atomic_load(&mimo_stall_marks.seq);
        double diag0 = mimo_graph_diag_seconds(g);
        if (!rc)
            rc = run_steps(m, &src, &c, steps);
        r->diag_s = (mimo_graph_diag_seconds(g) - diag0) / (double)steps;
        r->stall_marks = (double)(atomic_load(&mimo_stall_marks.seq) - seq0) / 2 /
                         (double)steps;
        mimo_dist_times(d, t, 1);
        mimo_stall_stop();
        r->stall_mark_ns = stall_mark_ns();
        for (int k = 0; k < MIMO_N_PHASES; k++)
            r->phase[k] = t[k] / (double)steps;
        size_t lo, hi;
        mimo_model_slice(m, (size_t)spec->train.batch_size, &lo, &hi);
        r->slice = (int)(hi - lo); /* every step's: the data are whole batches */
        if (!rc && o->layers && !(rc = mimo_graph_time_layers(g, 1))) {
            long layer_steps = steps < 50 ? steps : 50; /* apart from the above */
            counter lc = {0, malloc(sizeof(double) * 51), c.st, d};
            rc = lc.marks ? run_steps(m, &src, &lc, layer_steps)
                          : mimo_error(MIMO_ENOMEM, "out of memory");
            kind_times(g, layer_steps, r->slice, r);
            free(lc.marks);
        }
    }
    if (!rc) {
        r->batch = spec->train.batch_size;
        r->steps = steps;
        r->params = mimo_model_param_count(m);
        summarize(&c, warmup, steps, segments, r->batch, r);
        r->flops_per_sample = mimo_graph_flops(g);
        r->gflops = r->flops_per_sample * r->sps_median / 1e9;
        r->sgemm_bound_sps = r->sgemm_gflops * 1e9 * r->ranks / r->flops_per_sample;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        r->rss_mb = (double)ru.ru_maxrss / 1024.0;
        r->pss_mb = pss_mb();
        r->model_mb = model_mb(m, g, rows);
        r->scratch_mb = scratch_mb(g);
        double ck_file, ck_snap;
        mimo_checkpoint_sizes(g, &ck_file, &ck_snap);
        r->ckpt_mb = ck_file / 1e6;
        r->snap_mb = (double)mimo_ckpt_snap_bytes(m) / 1e6;
    }
    if (!rc && d)
        rc = mimo_dist_vote_drain(d);
    if (!rc && trace) /* collective */
        rc = mimo_trace_write(trace, comm, o->trace_path);
    for (int i = 0; i < s.n; i++)
        free(s.buf[i]);
    free(s.buf);
    free(s.arr);
    free(c.marks);
    mimo_stats_free(&st);
    /* a rank that failed alone makes no collective call (teardown.h): its
     * job ends with MPI_Abort */
    mimo_release(&(mimo_held){.data = {&file}, .dist = &d, .comm = &comm},
                 mimo_failed_alone(comm, rc));
    mimo_trace_free(&trace);
    mimo_model_free(&m);
    return rc;
}
