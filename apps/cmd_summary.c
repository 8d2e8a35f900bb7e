/* cmd_summary.c — `mimo summary` and `mimo dot`: load a config, compile it,
 * print the layer table (and what a checkpoint of it takes) or the
 * Graphviz text. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mimo/mimo.h"

/* "12.4 kB", "6.7 MB" */
static const char *size_text(double bytes, char *buf, size_t len)
{
    if (bytes < 1e6)
        snprintf(buf, len, "%.1f kB", bytes / 1e3);
    else
        snprintf(buf, len, "%.1f MB", bytes / 1e6);
    return buf;
}

/* What a save takes, as io/checkpoint.c writes it (the core's summary
 * knows nothing of HDF5). */
static void checkpoint_line(const mimo_graph *g)
{
    double file, snap;
    char a[32], b[32];
    mimo_checkpoint_sizes(g, &file, &snap);
    printf("Checkpoint: about %s; each save takes a %s snapshot of the "
           "parameters and moments on rank 0, from which a background thread "
           "builds the file in memory and writes it (snapshot and file buffer "
           "kept for the next saves)\n", size_text(file, a, sizeof a),
           size_text(snap, b, sizeof b));
}

static int show(const char *cmd, int argc, char **argv)
{
    mimo_cli_config c = {0};
    for (int i = 0; i < argc; i++) {
        int rc;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: mimo %s CONFIG|CHECKPOINT|RUN_DIR [--set KEY.PATH=VALUE]...\n"
                   "  (a checkpoint's or a run directory's newest checkpoint's "
                   "config)\n", cmd);
            return 0;
        }
        if ((rc = mimo_cli_config_arg(argc, argv, &i, &c)))
            return rc;
    }
    if (!c.config)
        return mimo_cli_usage_error("missing CONFIG file");
    mimo_spec spec;
    mimo_graph *g = NULL;
    if (mimo_cli_load_spec(&c, &spec)) {
        mimo_spec_free(&spec);
        return mimo_cli_fail();
    }
    /* the run's batch, so that the summary's memory estimate is the run's */
    long b = spec.train.batch_size; /* a micro-step's rows with accumulate */
    if (spec.train.accumulate > 1)
        b /= spec.train.accumulate;
    int rc = mimo_graph_compile(&spec, b >= 1 && b <= (1L << 30) ? (int)b : 1, 0, &g);
    if (!rc)
        rc = strcmp(cmd, "summary") == 0 ? mimo_summary_write(g, stdout)
                                         : mimo_dot_write(g, stdout); /* mimo dot */
    if (!rc && strcmp(cmd, "summary") == 0)
        checkpoint_line(g);
    mimo_graph_free(&g);
    mimo_spec_free(&spec);
    return rc ? mimo_cli_fail() : 0;
}

int mimo_cmd_summary(int argc, char **argv) { return show("summary", argc, argv); }
int mimo_cmd_dot(int argc, char **argv) { return show("dot", argc, argv); }
