/* rundir.c — the run directory and its checkpoints (see rundir.h), and
 * finding the newest checkpoint of a directory (trainer.h). */
#define _POSIX_C_SOURCE 200809L /* opendir, stat */
#include "train/rundir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fsutil.h"
#include "base/strutil.h"
#include "mimo/dist.h"
#include "mimo/error.h"
#include "mimo/trainer.h"

static int write_text_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return mimo_error(MIMO_EIO, "%s: cannot write: %s", path, strerror(errno));
    fputs(text ? text : "", f);
    int bad = ferror(f);
    if (fclose(f) || bad)
        return mimo_error(MIMO_EIO, "%s: write failed", path);
    return 0;
}

int mimo_rundir_open(mimo_rundir *d, const char *dir, int keep,
                     const char *config_text, MPI_Comm comm, int rank, int size)
{
    memset(d, 0, sizeof *d);
    d->keep = keep, d->comm = comm, d->rank = rank, d->size = size;
    char *cfg = mimo_strcat2(dir, "/config.yaml");
    if (!(d->dir = mimo_strdup(dir)) || !(d->ckpt_dir = mimo_strcat2(dir, "/checkpoints")) ||
        !(d->history = mimo_strcat2(dir, "/history.csv")) || !cfg) {
        free(cfg);
        return mimo_error(MIMO_ENOMEM, "out of memory");
    }
    int rc = 0;
    if (rank == 0 && !(rc = mimo_mkdirs(d->ckpt_dir))) /* rank 0 alone writes */
        rc = write_text_file(cfg, config_text);
    free(cfg);
    return rc;
}

void mimo_rundir_close(mimo_rundir *d)
{
    free(d->dir);
    free(d->ckpt_dir);
    free(d->history);
    memset(d, 0, sizeof *d);
}

/* The .h5 files of dir/checkpoints into list (malloc'd names, *n of
 * them); none when it does not exist. */
static int list_checkpoints(const char *dir, char ***list, size_t *n)
{
    char path[4200];
    size_t cap = 0;
    *list = NULL, *n = 0;
    snprintf(path, sizeof path, "%s/checkpoints", dir);
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        char file[4500];
        struct stat sb;
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".h5") || stat(file, &sb) ||
            !S_ISREG(sb.st_mode))
            continue;
        if (*n == cap) {
            char **l = realloc(*list, sizeof *l * (cap = cap ? 2 * cap : 16));
            if (!l)
                break;
            *list = l;
        }
        if (!((*list)[*n] = mimo_strdup(e->d_name)))
            break;
        ++*n;
    }
    if (d)
        closedir(d);
    return 0;
}

int mimo_rundir_check(const char *dir, int resume, int overwrite)
{
    char path[4200], **list;
    size_t n;
    struct stat sb;
    if (resume)
        return 0;
    snprintf(path, sizeof path, "%s/history.csv", dir);
    int history = stat(path, &sb) == 0;
    list_checkpoints(dir, &list, &n);
    int rc = 0;
    if ((history || n) && !overwrite)
        rc = mimo_error(MIMO_EINVAL, "%s holds an earlier run (%s%s%zu checkpoint%s): "
                        "resume it with --resume auto, or start again with "
                        "--overwrite, which deletes them", dir,
                        history ? "history.csv" : "", history ? " and " : "", n,
                        n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        if (!rc) { /* --overwrite: the user asked to lose them */
            snprintf(path, sizeof path, "%s/checkpoints/%s", dir, list[i]);
            remove(path);
        }
        free(list[i]);
    }
    free(list);
    if (!rc && history) {
        snprintf(path, sizeof path, "%s/history.csv", dir);
        remove(path);
    }
    return rc;
}

static char *ckpt_path(const mimo_rundir *d, const char *name)
{
    size_t n = strlen(d->ckpt_dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", d->ckpt_dir, name);
    return p;
}

int mimo_rundir_save(const mimo_rundir *d, const char *name, mimo_model *m,
                     const mimo_ckpt_state *st, const mimo_real *best)
{
    int rc = 0;
    if (d->rank == 0) {
        char *path = ckpt_path(d, name);
        rc = path ? mimo_checkpoint_save(path, m, st, best)
                  : mimo_error(MIMO_ENOMEM, "out of memory");
        free(path);
    }
    return d->size > 1 ? mimo_agree(d->comm, rc) : rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Removes all but the newest `keep` ckpt-*.h5 of the directory. A name
 * that cannot be copied (out of memory) is just not pruned. */
static void prune(const mimo_rundir *d)
{
    DIR *dir = opendir(d->ckpt_dir);
    char **list = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; dir && (e = readdir(dir));) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "ckpt-", 5) || len < 4 || strcmp(e->d_name + len - 3, ".h5"))
            continue;
        if (n == cap) {
            char **l = realloc(list, sizeof *l * (cap = cap ? 2 * cap : 16));
            if (!l)
                break;
            list = l;
        }
        if ((list[n] = mimo_strdup(e->d_name)))
            n++;
    }
    if (dir)
        closedir(dir);
    if (n)
        qsort(list, n, sizeof *list, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char *path = (long)i < (long)n - d->keep ? ckpt_path(d, list[i]) : NULL;
        if (path)
            remove(path);
        free(path);
        free(list[i]);
    }
    free(list);
}

int mimo_rundir_save_periodic(const mimo_rundir *d, mimo_model *m,
                              const mimo_ckpt_state *st, const mimo_real *best)
{
    char name[64];
    snprintf(name, sizeof name, "ckpt-%012lld.h5", (long long)st->global_step);
    int rc = mimo_rundir_save(d, name, m, st, best);
    if (!rc && d->rank == 0)
        prune(d);
    return rc;
}

/* ---- finding checkpoints ------------------------------------------------ */

int mimo_find_checkpoint(const char *dir_or_file, char *path, size_t len)
{
    struct stat sb;
    if (stat(dir_or_file, &sb))
        return mimo_error(MIMO_EIO, "%s: %s", dir_or_file, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(path, len, "%s", dir_or_file);
        return 0;
    }
    char dir[2048];
    snprintf(dir, sizeof dir, "%s/checkpoints", dir_or_file);
    if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
        snprintf(dir, sizeof dir, "%s", dir_or_file);
    DIR *d = opendir(dir);
    if (!d)
        return mimo_error(MIMO_EIO, "%s: cannot list: %s", dir, strerror(errno));
    int64_t best = -1, gs;
    char cand[4096];
    path[0] = '\0';
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".h5") != 0 ||
            strcmp(e->d_name, "best.h5") == 0)
            continue; /* best.h5 is the best, not the newest */
        snprintf(cand, sizeof cand, "%s/%s", dir, e->d_name);
        if (mimo_checkpoint_probe(cand, &gs) && gs > best) {
            best = gs;
            snprintf(path, len, "%s", cand);
        }
    }
    closedir(d);
    if (best < 0)
        return mimo_error(MIMO_EINVAL, "%s: no valid checkpoint to resume from",
                          dir_or_file);
    return 0;
}
