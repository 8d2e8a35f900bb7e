/* cmd_gen.c — `mimo gen NAME --out F [--n N] [--seed S] [--random]`: writes
 * one of the built-in datasets of the seeds (src/gen.c). Only parses
 * arguments; usage errors exit 2, failures to write exit 1. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tools/datagen.h"
#include "mimo/error.h"

static void usage(void)
{
    printf("usage: mimo gen NAME --out FILE.h5 [--n N] [--seed S] [--random] [--vocab V]\n"
           "                [--correlation P]\n"
           "\n"
           "Writes a built-in dataset (HDF5, one dataset per input and target).\n"
           "  --out FILE   output file (written to FILE.tmp, then renamed)\n"
           "  --n N        samples (default: per dataset, below)\n"
           "  --seed S     seed of every random draw (default "
           MIMO_CLI_STR(MIMO_GEN_SEED_DEFAULT) ")\n"
           "  --random     sinexp, sin12: x uniform in [0, 1), sorted, instead\n"
           "               of linspace(0, 1, N) (for validation sets)\n"
           "  --vocab V    ctr: ids per table (default "
           MIMO_CLI_STR(MIMO_GEN_VOCAB_DEFAULT) ", at most 10^7)\n"
           "  --correlation P  correlated: the two tasks' correlation, in\n"
           "               [-1, 1] (default 0)\n"
           "\n"
           "datasets:\n");
    for (const char *const *n = mimo_gen_names(); *n; n++) {
        mimo_gen_info info;
        if (mimo_gen_lookup(*n, &info) == 0)
            printf("  %-12s N=%-6ld %s\n", info.name, info.default_n, info.summary);
    }
}

/* Parses one option at argv[*i] into o; 0, 1 for --help, or 2. */
static int option(int argc, char **argv, int *i, mimo_gen_opts *o)
{
    const char *s = argv[*i];
    long v = 0;
    if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
        usage();
        return 1;
    }
    if (strcmp(s, "--random") == 0) {
        o->random_x = 1;
        return 0;
    }
    int out = mimo_cli_is(s, "--out"), n = mimo_cli_is(s, "--n"),
        seed = mimo_cli_is(s, "--seed"), vocab = mimo_cli_is(s, "--vocab");
    if (vocab) {
        const char *val = mimo_cli_value(argc, argv, i);
        return mimo_cli_long("--vocab", val, 2, &o->vocab) ? 2 : 0;
    }
    if (mimo_cli_is(s, "--correlation")) {
        const char *val = mimo_cli_value(argc, argv, i);
        if (mimo_cli_double("--correlation", val, &o->correlation))
            return 2;
        if (!(o->correlation >= -1 && o->correlation <= 1))
            return mimo_cli_usage_error("gen: --correlation must be in [-1, 1], got %s",
                                        val);
        return 0;
    }
    if (!out && !n && !seed)
        return mimo_cli_usage_error("gen: unknown option '%s'", s);
    const char *val = mimo_cli_value(argc, argv, i);
    if (!val)
        return mimo_cli_usage_error("gen: %s needs a value", s);
    if (out)
        o->path = val;
    else if (mimo_cli_long(n ? "--n" : "--seed", val, n ? 1 : 0, &v))
        return 2;
    else if (n)
        o->n = v;
    else
        o->seed = (uint64_t)v;
    return 0;
}

int mimo_cmd_gen(int argc, char **argv)
{
    mimo_gen_opts o = {.seed = MIMO_GEN_SEED_DEFAULT};
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            int rc = option(argc, argv, &i, &o);
            if (rc)
                return rc == 1 ? 0 : rc;
        } else if (o.name) {
            return mimo_cli_usage_error("gen: unexpected argument '%s'", argv[i]);
        } else {
            o.name = argv[i];
        }
    }
    mimo_gen_info info;
    if (!o.name)
        return mimo_cli_usage_error("gen: missing NAME (see mimo gen --help)");
    if (mimo_gen_lookup(o.name, &info))
        return mimo_cli_usage_error("gen: %s", mimo_errmsg());
    if (!o.path)
        return mimo_cli_usage_error("gen: missing --out FILE");
    if (o.random_x && !info.has_random_x)
        return mimo_cli_usage_error("gen: --random applies only to sinexp and "
                                    "sin12, not '%s'", o.name);
    if (mimo_gen(&o))
        return mimo_cli_fail();
    printf("wrote %s (%s, N=%ld)\n", o.path, o.name, o.n ? o.n : info.default_n);
    return 0;
}
