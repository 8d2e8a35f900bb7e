/* mimo.c — the `mimo` command: parses arguments and calls the library.
 * Subcommands: summary, dot (train, predict, eval, gen, import come with
 * the HDF5 layer). Errors print "mimo: error: ..." once and exit 1;
 * usage errors exit 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/mimo.h"

#define MAX_SETS 64

static const char *usage_text =
    "usage: mimo COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  summary CONFIG [--set KEY=VALUE]...   layer table, shapes, parameters\n"
    "  dot CONFIG [--set KEY=VALUE]...       Graphviz text of the network\n"
    "  version                               print the version\n"
    "\n"
    "Run 'mimo COMMAND --help' for a command's options.\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "mimo: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run 'mimo --help' for usage)\n");
    return 2;
}

static int fail(void)
{
    fprintf(stderr, "mimo: error: %s\n", mimo_errmsg());
    return 1;
}

/* Options shared by commands that read a config. */
typedef struct {
    const char *config;
    const char *sets[MAX_SETS];
    int n_sets;
} config_args;

static int parse_config_args(const char *cmd, int argc, char **argv,
                             config_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            printf("usage: mimo %s CONFIG [--set KEY.PATH=VALUE]...\n", cmd);
            exit(0);
        } else if (strcmp(s, "--set") == 0 || strncmp(s, "--set=", 6) == 0) {
            const char *v = s[5] == '=' ? s + 6 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v)
                return usage_error("--set needs KEY.PATH=VALUE%s", "");
            if (a->n_sets == MAX_SETS)
                return usage_error("too many --set options (at most 64)%s", "");
            a->sets[a->n_sets++] = v;
        } else if (s[0] == '-' && s[1] != '\0')
            return usage_error("unknown option '%s'", s);
        else if (a->config)
            return usage_error("unexpected argument '%s'", s);
        else
            a->config = s;
    }
    if (!a->config)
        return usage_error("missing CONFIG file%s", "");
    return 0;
}

/* summary and dot: load, compile, write. */
static int cmd_show(const char *cmd, int argc, char **argv)
{
    config_args a;
    int rc = parse_config_args(cmd, argc, argv, &a);
    if (rc)
        return rc;
    mimo_spec spec;
    mimo_graph *g = NULL;
    if (mimo_config_load(a.config, a.sets, a.n_sets, &spec))
        return fail();
    rc = mimo_graph_compile(&spec, 1, 0, &g);
    if (!rc)
        rc = strcmp(cmd, "dot") == 0 ? mimo_dot_write(g, stdout)
                                     : mimo_summary_write(g, stdout);
    mimo_graph_free(&g);
    mimo_spec_free(&spec);
    return rc ? fail() : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "summary") == 0 || strcmp(cmd, "dot") == 0)
        return cmd_show(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mimo %s\n", mimo_version());
        return 0;
    }
    return usage_error("unknown command '%s'", cmd);
}
