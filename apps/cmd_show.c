/* cmd_show.c — `mimo summary` and `mimo dot`: load a config, compile it,
 * print the layer table or the Graphviz text. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mimo/mimo.h"

#define MAX_SETS 64

static int show(const char *cmd, int argc, char **argv)
{
    const char *config = NULL, *sets[MAX_SETS];
    int n_sets = 0;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            printf("usage: mimo %s CONFIG [--set KEY.PATH=VALUE]...\n", cmd);
            return 0;
        } else if (mimo_cli_is(s, "--set")) {
            const char *v = mimo_cli_value(argc, argv, &i);
            if (!v)
                return mimo_cli_usage_error("--set needs KEY.PATH=VALUE");
            if (n_sets == MAX_SETS)
                return mimo_cli_usage_error("too many --set options (at most %d)",
                                            MAX_SETS);
            sets[n_sets++] = v;
        } else if (s[0] == '-' && s[1] != '\0')
            return mimo_cli_usage_error("unknown option '%s'", s);
        else if (config)
            return mimo_cli_usage_error("unexpected argument '%s'", s);
        else
            config = s;
    }
    if (!config)
        return mimo_cli_usage_error("missing CONFIG file");
    mimo_spec spec;
    mimo_graph *g = NULL;
    if (mimo_config_load(config, sets, n_sets, &spec))
        return mimo_cli_fail();
    int rc = mimo_graph_compile(&spec, 1, 0, &g);
    if (!rc)
        rc = strcmp(cmd, "dot") == 0 ? mimo_dot_write(g, stdout)
                                     : mimo_summary_write(g, stdout);
    mimo_graph_free(&g);
    mimo_spec_free(&spec);
    return rc ? mimo_cli_fail() : 0;
}

int mimo_cmd_summary(int argc, char **argv) { return show("summary", argc, argv); }
int mimo_cmd_dot(int argc, char **argv) { return show("dot", argc, argv); }
