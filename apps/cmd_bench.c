/* cmd_bench.c — `mimo bench CONFIG`: speed of one config's training step
 * on a dataset file or synthetic rows, as one process or under mpirun
 * (see tools/bench.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mimo/bench.h"
#include "mimo/config.h"
#include "mimo/trainer.h"

static const char *usage =
    "usage: mimo bench CONFIG [--data FILE | --rows N] [--steps N] [--warmup N]\n"
    "                  [--segments K] [--layers] [--stall-warn S]\n"
    "                  [--allreduce MODE] [--bucket-mb X] [--ranks-per-node K]\n"
    "                  [--embedding-grads sparse|dense] [--strict-precision]\n"
    "                  [--set KEY.PATH=VALUE]...\n"
    "  --data FILE        train on FILE's rows, read as mimo train reads\n"
    "                     data.train (held whole or streamed); default:\n"
    "                     random rows of the right shapes in memory\n"
    "  --rows N           that many random rows (default 8 global batches)\n"
    "  --trace FILE       write a Chrome trace of every rank's steps (as\n"
    "                     mimo train --trace)\n"
    "  --layers           also time each layer kind's forward and backward\n"
    "                     (50 more steps, apart from the figures above): ms,\n"
    "                     share, GFLOP/s of its matrix products, % of sgemm\n"
    "  --strict-precision refuse train.precision: bf16 on a CPU without native\n"
    "                     bf16 (default: float32, the precision line says why)\n"
    "  --stall-warn S     the stall detector as in mimo train (default "
    MIMO_CLI_STR(MIMO_STALL_WARN_DEFAULT) ";\n"
    "                     0: off); its cost per step is reported\n"
    MIMO_CLI_DIST_HELP;

static void report(const mimo_bench_result *r, const char *data)
{
    static const char *const phase[MIMO_BENCH_PHASES] = {"data", "forward", "backward",
                                                     "optimizer", "gradient sum"};
    printf("ranks %d x threads %d, global batch %ld, %zu parameters, %ld timed steps\n",
           r->ranks, r->threads, r->batch, r->params, r->steps);
    printf("data               %ld rows, %s%s\n", r->rows, data ? data : "random",
           !data ? ", in memory" : r->streamed ? ", streamed from the file"
                                               : ", held in memory");
    if (r->ranks > 1)
        printf("gradient sum       %s (%s)\n", mimo_allreduce_name(r->allreduce),
               r->exchange);
    printf("samples/s          %.0f (median; range %.0f .. %.0f)\n", r->sps_median,
           r->sps_min, r->sps_max);
    printf("matrix products    %.2f GFLOP/s (%.3g MFLOP per sample)\n", r->gflops,
           r->flops_per_sample / 1e6);
    printf("precision          %s\n", r->precision);
    printf("sgemm 1024^3       %.2f GFLOP/s per rank at %d thread(s)\n",
           r->sgemm_gflops, r->threads);
    if (r->bf16_gflops > 0)
        printf("bf16 matmul 1024^3 %.2f GFLOP/s per rank (float32 accumulation)\n",
               r->bf16_gflops);
    printf("share of sgemm     %.1f%% (sgemm-bound rate %.0f samples/s)\n",
           100 * r->sps_median / r->sgemm_bound_sps, r->sgemm_bound_sps);
    printf("step               %.3f ms (rank 0)\n", 1e3 * r->step_s);
    for (int k = 0; k < MIMO_BENCH_PHASES; k++)
        printf("  %-16s %.3f ms  %5.1f%%\n", phase[k], 1e3 * r->phase[k],
               100 * r->phase[k] / r->step_s);
    printf("peak RSS           %.1f MiB (params, grads, moments, activations, "
           "data: %.1f MiB)\n", r->rss_mb, r->model_mb);
    printf("checkpoint         about %.1f MB; a save copies %.1f MB on rank 0 (a "
           "snapshot), the file is built from it in memory (both kept)\n",
           r->ckpt_mb, r->snap_mb);
    if (r->ranks > 1 && r->stall_warn > 0)
        printf("stall detector     --stall-warn %g: %.1f waits marked per step, "
               "%.1f ns each: %.5f%% of a step\n", r->stall_warn, r->stall_marks,
               r->stall_mark_ns, 100 * r->stall_marks * r->stall_mark_ns * 1e-9 / r->step_s);
    if (r->diag_s > 0)
        printf("grad diagnostics   %.3f ms per step: %.2f%% of a step (copies and "
               "dot products at the shared tensors)\n", 1e3 * r->diag_s,
               100 * r->diag_s / r->step_s);
    if (r->ranks > 1 && r->pss_mb > 0) /* the shared gradient windows */
        printf("PSS                %.1f MiB (resident, pages shared by the "
               "ranks divided among them)\n", r->pss_mb);
    if (r->scratch_mb > 0)
        printf("work buffers       %.1f MiB (convolutions, pooling argmax, recurrent steps; "
               "for %ld rows, allocated once)\n", r->scratch_mb, r->batch);
    if (r->n_kinds == 0) /* without --layers */
        return;
    double all = 0;
    for (int k = 0; k < r->n_kinds; k++)
        all += r->kinds[k].fwd_s + r->kinds[k].bwd_s;
    printf("per layer kind     (--layers: mean per step of rank 0's %d-row "
           "slice, largest first)\n", r->slice);
    printf("  %-22s %10s %10s %6s %9s %8s\n", "kind (layers)", "forward",
           "backward", "share", "GFLOP/s", "% sgemm");
    for (int k = 0; k < r->n_kinds; k++) {
        const mimo_bench_kind *q = &r->kinds[k];
        char name[64];
        double t = q->fwd_s + q->bwd_s, gf = t > 0 ? q->flops / t / 1e9 : 0;
        snprintf(name, sizeof name, "%s (%d)", q->kind, q->layers);
        printf("  %-22s %7.3f ms %7.3f ms %5.1f%%", name, 1e3 * q->fwd_s,
               1e3 * q->bwd_s, all > 0 ? 100 * t / all : 0);
        if (q->flops > 0 && r->sgemm_gflops > 0)
            printf(" %9.2f %7.1f%%", gf, 100 * gf / r->sgemm_gflops);
        printf("\n");
    }
}

int mimo_cmd_bench(int argc, char **argv)
{
    mimo_bench_opts o = {0};
    mimo_cli_config c = {0};
    int rc, done;
    long v;
    o.comm = mimo_cli_comm();
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            if (mimo_cli_rank() == 0)
                fputs(usage, stdout);
            return 0;
        } else if (mimo_cli_is(s, "--data")) {
            if (!(o.data = mimo_cli_value(argc, argv, &i)) || !*o.data)
                return mimo_cli_usage_error("--data needs a file");
        } else if (mimo_cli_is(s, "--trace")) {
            if (!(o.trace_path = mimo_cli_value(argc, argv, &i)) || !*o.trace_path)
                return mimo_cli_usage_error("--trace needs a file");
        } else if (mimo_cli_is(s, "--rows")) {
            if ((rc = mimo_cli_long(s, mimo_cli_value(argc, argv, &i), 1, &o.rows)))
                return rc;
        } else if (!strcmp(s, "--layers")) {
            o.layers = 1;
        } else if (!strcmp(s, "--strict-precision")) {
            o.strict_precision = 1;
        } else if (mimo_cli_is(s, "--stall-warn")) {
            if ((rc = mimo_cli_double(s, mimo_cli_value(argc, argv, &i), &o.stall_warn)))
                return rc;
            if (o.stall_warn <= 0)
                o.stall_warn = -1; /* off */
        } else if (mimo_cli_is(s, "--steps") || mimo_cli_is(s, "--warmup") ||
                   mimo_cli_is(s, "--segments")) {
            if ((rc = mimo_cli_long(s, mimo_cli_value(argc, argv, &i), 1, &v)))
                return rc;
            if (s[2] == 's' && s[3] == 't')
                o.steps = v;
            else if (s[2] == 'w')
                o.warmup = v;
            else if (v > MIMO_BENCH_MAX_SEGMENTS)
                return mimo_cli_usage_error("--segments is at most %d, got %ld",
                                            MIMO_BENCH_MAX_SEGMENTS, v);
            else
                o.segments = (int)v;
        } else if ((rc = mimo_cli_dist_arg(argc, argv, &i, &o.dist, &done)))
            return rc;
        else if (!done && (rc = mimo_cli_config_arg(argc, argv, &i, &c)))
            return rc;
    }
    if (!c.config)
        return mimo_cli_usage_error("missing CONFIG file");
    if (o.data && o.rows)
        return mimo_cli_usage_error("--rows sets the random rows: not with --data");
    mimo_spec spec;
    mimo_bench_result r;
    if ((rc = mimo_cli_agree(mimo_cli_load_spec(&c, &spec)))) {
        mimo_spec_free(&spec);
        return mimo_cli_fail_rc(rc);
    }
    rc = mimo_bench(&spec, &o, &r);
    mimo_spec_free(&spec);
    if (rc)
        return mimo_cli_fail_rc(rc);
    if (mimo_cli_rank() == 0)
        report(&r, o.data);
    return 0;
}
