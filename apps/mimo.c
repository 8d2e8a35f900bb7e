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
    "  train [CONFIG] [options]            train a network (see mimo train --help)\n"
    "  predict CHECKPOINT|RUN_DIR --data F --out F   write each head's outputs\n"
    "  eval CHECKPOINT|RUN_DIR --data F    per-head losses and metrics\n"
    "  summary CONFIG|CHECKPOINT|RUN_DIR   layer table, shapes, parameters, memory\n"
    "  dot CONFIG|CHECKPOINT|RUN_DIR       Graphviz text of the network\n"
    "  gen NAME --out F                    write a built-in dataset\n"
    "  import csv|idx ...                  convert CSV or IDX files to HDF5\n"
    "  bench CONFIG [--data F | --rows N]  training speed, on a dataset file or random rows\n"
    "  plot HISTORY.csv|RUN_DIR -o F.png   draw a run's losses and metrics\n"
    "  export onnx|torch CHECKPOINT|RUN_DIR --out F  the model for other runtimes\n"
    "  list [CATEGORY] [--plugin F]        the layer kinds, activations, losses, metrics,\n"
    "                                      optimizers and initializers a config may use\n"
    "  version                             print the version\n"
    "\n"
    "Run 'mimo COMMAND --help' for a command's options.\n";

/* parallel: every rank runs the command; otherwise rank 0 runs it alone
 * (so no two ranks write the same file or print the same table) and the
 * others return its exit code. */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    int parallel;
} commands[] = {
    {"summary", mimo_cmd_summary, 0}, {"dot", mimo_cmd_dot, 0},
    {"train", mimo_cmd_train, 1},     {"predict", mimo_cmd_predict, 1},
    {"eval", mimo_cmd_eval, 1},       {"gen", mimo_cmd_gen, 0},
    {"import", mimo_cmd_import, 0},   {"bench", mimo_cmd_bench, 1},
    {"plot", mimo_cmd_plot, 0},       {"list", mimo_cmd_list, 0},
    {"export", mimo_cmd_export, 0},
};

static int on_rank0(int (*run)(int, char **), int argc, char **argv)
{
    int rc = 0;
    mimo_cli_solo(1);
    if (mimo_cli_rank() == 0)
        rc = run(argc, argv);
    mimo_cli_solo(0);
    if (mimo_cli_size() > 1)
        MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return rc;
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (mimo_cli_rank() == 0)
            fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        if (mimo_cli_rank() == 0)
            printf("mimo %s\n", mimo_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].parallel ? commands[i].run(argc - 2, argv + 2)
                                        : on_rank0(commands[i].run, argc - 2, argv + 2);
    return mimo_cli_usage_error("unknown command '%s'", argv[1]);
}

/* train's stop signals (SIGTERM, SIGUSR1, SIGINT) are caught from the
 * first moment the program runs: from .preinit_array, which the dynamic
 * loader calls before any shared library's constructors (OpenBLAS, Open
 * MPI and OpenMP take tens of milliseconds to start), so that a signal at
 * once asks for a stop instead of killing the process. They are blocked
 * there (every thread started later inherits that) and main starts the
 * one thread that takes them. */
static void early_signals(int argc, char **argv, char **envp)
{
    (void)envp;
    if (argc > 1 && argv && argv[1] && strcmp(argv[1], "train") == 0)
        mimo_cmd_train_signals(0);
}
__attribute__((section(".preinit_array"), used))
static void (*const mimo_preinit)(int, char **, char **) = early_signals;

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "train") == 0)
        mimo_cmd_train_signals(1); /* the thread that takes them */
    mimo_cli_mpi_init(&argc, &argv);
    int rc = dispatch(argc, argv);
    mimo_cli_mpi_finalize();
    return rc;
}
