/* cli.c — shared helpers of the mimo subcommands: messages, option values
 * and strict number parsing. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mimo/trainer.h"
#include "mimo/config.h"
#include "mimo/error.h"
#include "mimo/trainer.h"

static int mpi_on, world_rank, world_size = 1, solo;

void mimo_cli_solo(int on) { solo = on; }

void mimo_cli_mpi_init(int *argc, char ***argv)
{
    const char *force = getenv("MIMO_MPI");
    int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") ||
                   getenv("PMI_RANK");
    if (force ? strcmp(force, "1") != 0 : !launched)
        return;
    /* Gradient allreduces are large: Rabenseifner's algorithm for the
     * bucketed MPI_Iallreduce and the ring for the blocking one measured
     * fastest here (tests/bench/README.md). Set before MPI_Init; the
     * user's own settings win. */
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", 0);
    setenv("OMPI_MCA_coll_tuned_use_dynamic_rules", "1", 0);
    setenv("OMPI_MCA_coll_tuned_allreduce_algorithm", "4", 0);
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "mimo: error: MPI_Init_thread failed\n");
        exit(1);
    }
    /* MPI failures are errors mimo reports (and then ends the job with
     * MPI_Abort), not aborts inside MPI; the library's own communicators
     * are duplicates of this one and inherit it */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    mpi_on = 1;
}

void mimo_cli_mpi_finalize(void)
{
    if (mpi_on)
        MPI_Finalize();
    mpi_on = 0;
}

int mimo_cli_rank(void) { return world_rank; }
int mimo_cli_size(void) { return world_size; }
MPI_Comm mimo_cli_comm(void) { return world_size > 1 ? MPI_COMM_WORLD : MPI_COMM_NULL; }

int mimo_cli_agree(int rc)
{
    return world_size > 1 ? mimo_agree(MPI_COMM_WORLD, rc) : rc;
}

int mimo_cli_usage_error(const char *fmt, ...)
{
    if (world_rank != 0)
        return 2; /* every rank parsed the same arguments: one message */
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mimo: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(run 'mimo --help' for usage)\n");
    va_end(ap);
    return 2;
}

int mimo_cli_fail_rc(int rc)
{
    if (rc == MIMO_EPEER)
        return 1;
    if (world_size > 1 && !solo) {
        fprintf(stderr, "mimo: error: rank %d of %d: %s\n", world_rank, world_size,
                mimo_errmsg());
        fflush(stderr);
        if (!mimo_error_agreed()) /* others may wait in a collective */
            MPI_Abort(MPI_COMM_WORLD, 1);
        return 1;
    }
    fprintf(stderr, "mimo: error: %s\n", mimo_errmsg());
    return 1;
}

int mimo_cli_fail(void) { return mimo_cli_fail_rc(MIMO_EINVAL); }

int mimo_cli_long(const char *flag, const char *s, long min, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end || errno || v < min)
        return mimo_cli_usage_error("%s expects an integer >= %ld, got '%s'", flag,
                                    min, s ? s : "");
    *out = v;
    return 0;
}

int mimo_cli_double(const char *flag, const char *s, double *out)
{
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || !isfinite(v))
        return mimo_cli_usage_error("%s expects a number, got '%s'", flag,
                                    s ? s : "");
    *out = v;
    return 0;
}

int mimo_cli_is(const char *arg, const char *name)
{
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

const char *mimo_cli_value(int argc, char **argv, int *i)
{
    const char *eq = strchr(argv[*i], '=');
    if (eq && strncmp(argv[*i], "--", 2) == 0)
        return eq + 1;
    if (*i + 1 < argc)
        return argv[++*i];
    return NULL;
}

int mimo_cli_dist_arg(int argc, char **argv, int *i, mimo_dist_opts *o, int *done)
{
    const char *s = argv[*i];
    double mb = 0;
    long k = 0;
    int rc = 0;
    *done = 1;
    if (mimo_cli_is(s, "--allreduce")) {
        if (mimo_allreduce_parse(mimo_cli_value(argc, argv, i), &o->mode))
            rc = mimo_cli_usage_error("--allreduce expects auto, shared, bucketed "
                                      "or blocking");
    } else if (mimo_cli_is(s, "--bucket-mb")) {
        rc = mimo_cli_double(s, mimo_cli_value(argc, argv, i), &mb);
        if (!rc && (mb <= 0 || mb > 1e6))
            rc = mimo_cli_usage_error("--bucket-mb must be in (0, 1e6]");
        o->bucket_bytes = (size_t)(mb * 1048576.0);
    } else if (mimo_cli_is(s, "--embedding-grads")) {
        /* the index is the value of dense_embeddings */
        static const char *const forms[] = {"sparse", "dense"};
        const char *v = mimo_cli_value(argc, argv, i);
        int f = 0;
        while (f < 2 && !(v && strcmp(v, forms[f]) == 0))
            f++;
        if (f < 2)
            o->dense_embeddings = f;
        else
            rc = mimo_cli_usage_error("--embedding-grads expects sparse or dense");
    } else if (mimo_cli_is(s, "--ranks-per-node")) {
        rc = mimo_cli_long(s, mimo_cli_value(argc, argv, i), 1, &k);
        if (!rc && k > 1 << 20)
            rc = mimo_cli_usage_error("--ranks-per-node is too large");
        o->ranks_per_node = (int)k;
    } else
        *done = 0;
    return rc;
}

int mimo_cli_add_set(mimo_cli_config *c, const char *set)
{
    if (c->n_sets == MIMO_CLI_MAX_SETS)
        return mimo_cli_usage_error("too many --set options (at most %d)",
                                    MIMO_CLI_MAX_SETS);
    c->sets[c->n_sets++] = set;
    return 0;
}

/* Whether path is a directory or starts with HDF5's signature. */
static int is_run_or_checkpoint(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char b[8];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 1;
    if (stat(path, &st) || !S_ISREG(st.st_mode))
        return 0; /* a FIFO, /dev/zero: the config reader refuses it, by name */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, b, 8) : 0;
    if (fd >= 0)
        close(fd);
    return n == 8 && memcmp(b, sig, 8) == 0;
}

int mimo_cli_load_spec(const mimo_cli_config *c, mimo_spec *spec)
{
    char path[4096];
    int rc;
    if (!is_run_or_checkpoint(c->config))
        return mimo_config_load(c->config, c->sets, c->n_sets, spec);
    if ((rc = mimo_find_checkpoint(c->config, path, sizeof path))) {
        mimo_spec_defaults(spec);
        return rc;
    }
    return mimo_checkpoint_spec(path, c->sets, c->n_sets, spec);
}

int mimo_cli_config_arg(int argc, char **argv, int *i, mimo_cli_config *c)
{
    const char *s = argv[*i];
    if (mimo_cli_is(s, "--set")) {
        const char *v = mimo_cli_value(argc, argv, i);
        if (!v || !*v)
            return mimo_cli_usage_error("--set needs KEY.PATH=VALUE");
        return mimo_cli_add_set(c, v);
    }
    if (s[0] == '-' && s[1])
        return mimo_cli_usage_error("unknown option '%s'", s);
    if (c->config)
        return mimo_cli_usage_error("unexpected argument '%s'", s);
    c->config = s;
    return 0;
}
