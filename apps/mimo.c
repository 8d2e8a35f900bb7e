/* mimo.c — the `mimo` command: dispatches to the subcommands in
 * apps/cmd_*.c. Errors print "mimo: error: ..." once and exit 1; usage
 * errors exit 2. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mimo/mimo.h"

static const char *usage_text =
    "usage: mimo COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  train CONFIG [options]          train a network (see mimo train --help)\n"
    "  predict CHECKPOINT --data F --out F   write each head's outputs\n"
    "  eval CHECKPOINT --data F        per-head losses and metrics\n"
    "  summary CONFIG|CHECKPOINT       layer table, shapes, parameters\n"
    "  dot CONFIG|CHECKPOINT           Graphviz text of the network\n"
    "  gen NAME --out F                write a built-in dataset\n"
    "  import csv|idx ...              convert CSV or IDX files to HDF5\n"
    "  version                         print the version\n"
    "\n"
    "Run 'mimo COMMAND --help' for a command's options.\n";

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"summary", mimo_cmd_summary}, {"dot", mimo_cmd_dot},
    {"train", mimo_cmd_train},     {"predict", mimo_cmd_predict},
    {"eval", mimo_cmd_eval},       {"gen", mimo_cmd_gen},
    {"import", mimo_cmd_import},
};

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("mimo %s\n", mimo_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    return mimo_cli_usage_error("unknown command '%s'", argv[1]);
}
