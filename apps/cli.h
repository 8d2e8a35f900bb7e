/* cli.h — what the subcommands of the `mimo` command share: error
 * reporting, numeric flag parsing, and the table of commands. Each
 * subcommand lives in its own apps/cmd_*.c and only parses arguments and
 * calls the library. */
#ifndef MIMO_CLI_H
#define MIMO_CLI_H

#include <mpi.h>

#include "mimo/trainer.h"

/* MPI is initialized only when a launcher (mpirun, srun) started us or
 * MIMO_MPI=1 asks for it; a plain `mimo` is one process without MPI. */
void mimo_cli_mpi_init(int *argc, char ***argv);
void mimo_cli_mpi_finalize(void);
/* This process's rank and the number of ranks (0 and 1 without MPI). */
int mimo_cli_rank(void);
int mimo_cli_size(void);
/* MPI_COMM_WORLD with more than one rank, else MPI_COMM_NULL. */
MPI_Comm mimo_cli_comm(void);
/* After a phase every rank runs on its own (e.g. reading the config):
 * rc agreed across ranks (see mimo_agree). */
int mimo_cli_agree(int rc);
/* While on, this rank works alone (the others wait): errors are reported
 * as in a single process. */
void mimo_cli_solo(int on);

/* Prints "mimo: error: <msg>" and a usage hint; returns 2. */
int mimo_cli_usage_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* Reports a library error rc: prints "mimo: error: <message>" (naming
 * the rank when there are several) and returns 1; with several ranks it
 * then ends the whole job with MPI_Abort, so no rank waits forever.
 * MIMO_EPEER (another rank failed and reports it) prints nothing. */
int mimo_cli_fail_rc(int rc);
/* mimo_cli_fail_rc for the last error. */
int mimo_cli_fail(void);

/* Strict number parsing for flag values: 0 ok, else a usage error (2). */
int mimo_cli_long(const char *flag, const char *s, long min, long *out);
int mimo_cli_double(const char *flag, const char *s, double *out);

/* Takes the value of option argv[*i] ("--x v" or "--x=v"); NULL if none. */
const char *mimo_cli_value(int argc, char **argv, int *i);

/* Whether argv[i] is `--name` or `--name=...`. */
int mimo_cli_is(const char *arg, const char *name);

/* What commands that read a config take besides their own flags: the
 * CONFIG file and --set overrides. */
#define MIMO_CLI_MAX_SETS 96

/* A number's macro as text, for the help texts' defaults (one home each). */
#define MIMO_CLI_STR_(x) #x
#define MIMO_CLI_STR(x) MIMO_CLI_STR_(x)
typedef struct {
    const char *config;
    const char *sets[MIMO_CLI_MAX_SETS];
    int n_sets;
} mimo_cli_config;

/* The spec of c->config with its --set overrides: a YAML config file, or
 * the config inside a checkpoint (a .h5 file) or a run directory's newest
 * checkpoint. */
int mimo_cli_load_spec(const mimo_cli_config *c, mimo_spec *spec);

/* Takes argv[*i] as --set KEY.PATH=VALUE or as the CONFIG file; any other
 * option is a usage error. Returns 0 or the usage error's code (2). */
int mimo_cli_config_arg(int argc, char **argv, int *i, mimo_cli_config *c);

/* Takes argv[*i] when it is one of the gradient-sum flags (--allreduce,
 * --bucket-mb, --ranks-per-node) into o and sets *done; returns 0 or the
 * usage error's code. */
int mimo_cli_dist_arg(int argc, char **argv, int *i, mimo_dist_opts *o, int *done);
#define MIMO_CLI_DIST_HELP                                                    \
    "  --allreduce MODE    how gradients are summed: auto (default: shared\n"  \
    "                      when ranks share a node, else bucketed), shared,\n" \
    "                      bucketed (overlapped with backward) or blocking\n"  \
    "  --bucket-mb X       bucketed: bucket size in MiB (default 2)\n"         \
    "  --ranks-per-node K  shared: treat every K consecutive ranks as a node\n" \
    "  --embedding-grads sparse|dense\n"                                      \
    "                      sum the embedding tables by the rows the ranks\n"  \
    "                      touched (sparse, the default; every --allreduce)\n" \
    "                      or in full (dense)\n"

/* Adds one override (e.g. built from a flag). */
int mimo_cli_add_set(mimo_cli_config *c, const char *set);

/* The subcommands: argc/argv start after the command name. */
int mimo_cmd_summary(int argc, char **argv);
int mimo_cmd_dot(int argc, char **argv);
int mimo_cmd_train(int argc, char **argv);
/* Installs train's stop signals (before MPI starts: a signal at once must
 * not kill the process) and blocks them in the calling thread; with
 * start_thread (not from .preinit_array), starts the one thread that
 * takes them (see cmd_train.c: why no computing thread may). */
void mimo_cmd_train_signals(int start_thread);
int mimo_cmd_predict(int argc, char **argv);
int mimo_cmd_eval(int argc, char **argv);
int mimo_cmd_gen(int argc, char **argv);
int mimo_cmd_import(int argc, char **argv);
int mimo_cmd_bench(int argc, char **argv);
int mimo_cmd_plot(int argc, char **argv);
int mimo_cmd_export(int argc, char **argv);
int mimo_cmd_list(int argc, char **argv);

#endif
