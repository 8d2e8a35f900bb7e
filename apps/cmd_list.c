/* cmd_list.c — `mimo list [CATEGORY]`: the names a config may use (layer
 * kinds, activations, losses, metrics, optimizers, initializers), read
 * from the library's own tables, so that scripts and the README's test
 * (tests/cli/readme_tables.sh) see what the code accepts; with --plugin
 * FILE, the layer kinds of that plug-in too (after the built-in ones). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mimo/mimo.h"
#include "mimo/plugin.h"

static const char *layer_at(int i) { return mimo_layer_kind_at(i); }
static const char *act_at(int i)
{
    return i < MIMO_ACT_COUNT ? mimo_act_name((mimo_act)i) : NULL;
}
/* loss 0 is "none", which no config may name */
static const char *loss_at(int i)
{
    return i + 1 < MIMO_LOSS_COUNT ? mimo_loss_name((mimo_loss)(i + 1)) : NULL;
}
static const char *metric_at(int i)
{
    return i < MIMO_METRIC_COUNT ? mimo_metric_name(i) : NULL;
}
static const char *opt_at(int i)
{
    return i < MIMO_OPT_COUNT ? mimo_opt_name((mimo_opt_kind)i) : NULL;
}
static const char *init_at(int i)
{
    return i < MIMO_INIT_COUNT ? mimo_init_name((mimo_init_kind)i) : NULL;
}

static const struct {
    const char *name;
    const char *(*at)(int i);
} categories[] = {
    {"layers", layer_at},   {"activations", act_at}, {"losses", loss_at},
    {"metrics", metric_at}, {"optimizers", opt_at},  {"initializers", init_at},
};
#define N_CATEGORIES ((int)(sizeof categories / sizeof *categories))

static const char *usage =
    "usage: mimo list [layers|activations|losses|metrics|optimizers|initializers]\n"
    "                 [--plugin FILE]...\n"
    "  the names a config may use, one per line; without a category,\n"
    "  every category on a line of its own: 'layers: dense activation ...'\n"
    "  --plugin FILE  load a plug-in (as a config's plugins: does): its layer\n"
    "                 kinds are listed after the built-in ones\n";

/* Loads the --plugin FILEs and removes them from argv; 0, 1 (failed: the
 * message printed) or 2 (usage). */
static int load_plugins(int *argc, char **argv)
{
    int n = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--plugin") != 0) {
            argv[n++] = argv[i];
            continue;
        }
        if (i + 1 == *argc)
            return mimo_cli_usage_error("list: --plugin needs a FILE");
        if (mimo_plugin_load(argv[++i]))
            return mimo_cli_fail();
    }
    *argc = n;
    return 0;
}

int mimo_cmd_list(int argc, char **argv)
{
    if (argc > 0 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        fputs(usage, stdout);
        return 0;
    }
    int rc = load_plugins(&argc, argv);
    if (rc)
        return rc;
    if (argc > 1)
        return mimo_cli_usage_error("list: unexpected argument '%s'", argv[1]);
    for (int c = 0; c < N_CATEGORIES; c++) {
        if (argc == 1 && strcmp(argv[0], categories[c].name) != 0)
            continue;
        if (argc == 0)
            printf("%s:", categories[c].name);
        for (int i = 0; categories[c].at(i); i++)
            printf(argc ? "%s\n" : " %s", categories[c].at(i));
        if (argc == 0)
            putchar('\n');
        else
            return 0;
    }
    if (argc == 1)
        return mimo_cli_usage_error("list: unknown category '%s' (expected one of: "
                                    "layers, activations, losses, metrics, "
                                    "optimizers, initializers)", argv[0]);
    return 0;
}
