/* rundir.c — the run directory and its checkpoints (see rundir.h), and
 * finding the newest checkpoint of a directory (trainer.h). A save copies
 * the model's changing state into a snapshot on the caller's thread; one
 * background thread builds the file from it (HDF5, under mimo_h5_lock)
 * and writes it (a job: the snapshot, the file's second names, the files
 * pruned after it); the thread does no MPI and has every signal
 * blocked. */
#define _DEFAULT_SOURCE /* flock, gethostname, opendir, stat */
#include "train/rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "base/strutil.h"
#include "io/checkpoint_impl.h"
#include "io/h5_impl.h"
#include "comm/dist.h"
#include "mimo/error.h"
#include "mimo/trainer.h"

/* path = text, atomically (a full disk leaves the old file whole). */
static int write_text_file(const char *path, const char *text)
{
    mimo_atomic a;
    int rc = mimo_atomic_begin(&a, path);
    if (!rc && !(rc = mimo_atomic_write(&a, text ? text : "", text ? strlen(text) : 0)))
        rc = mimo_atomic_commit(&a, NULL);
    if (rc)
        mimo_atomic_abort(&a);
    return rc;
}

/* ---- the lock ---------------------------------------------------------------- */

/* DIR/lock, opened for writing only when it is the run directory's own:
 * not a symbolic link (O_NOFOLLOW), a regular file with one name (a hard
 * link to a file elsewhere would be truncated and rewritten). */
static int open_lock(const char *path, int *fd)
{
    struct stat sb;
    int f = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0666);
    *fd = -1;
    if (f < 0 && errno == ELOOP)
        return mimo_error(MIMO_EINVAL, "%s: the run directory's lock is a symbolic "
                          "link: mimo writes its lock only into a file of its own; "
                          "remove the link", path);
    if (f < 0)
        return mimo_error(MIMO_EIO, "%s: cannot create the run directory's lock: %s",
                          path, strerror(errno));
    const char *bad = fstat(f, &sb) ? strerror(errno)
                      : !S_ISREG(sb.st_mode) ? "it is not a regular file"
                      : sb.st_nlink != 1 ? "it has other names (hard links): it may "
                                           "be a file of someone else's"
                      : NULL;
    if (bad) {
        close(f);
        return mimo_error(MIMO_EINVAL, "%s: refusing the run directory's lock: %s; "
                          "remove it", path, bad);
    }
    *fd = f;
    return 0;
}

/* DIR/checkpoints, when it exists, is a directory, not a symbolic link:
 * mimo writes, prunes and deletes there, never through a link. */
static int check_ckpt_dir(const char *dir)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/checkpoints", dir);
    if (lstat(path, &sb))
        return 0; /* made later */
    if (S_ISLNK(sb.st_mode))
        return mimo_error(MIMO_EINVAL, "%s is a symbolic link: mimo writes and deletes "
                          "checkpoints only in a directory of the run's own, never "
                          "through a link; remove it (or train into another --out)",
                          path);
    if (!S_ISDIR(sb.st_mode))
        return mimo_error(MIMO_EINVAL, "%s is not a directory: remove it (or train "
                          "into another --out)", path);
    return 0;
}

int mimo_rundir_lock(const char *dir, int *fd)
{
    char path[4200], who[512] = "", host[256] = "?", when[64] = "?";
    *fd = -1;
    int rc = mimo_mkdirs(dir), f;
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/lock", dir);
    if ((rc = open_lock(path, &f)))
        return rc;
    while (flock(f, LOCK_EX | LOCK_NB)) {
        if (errno == EINTR)
            continue;
        int err = errno;
        ssize_t n = err == EWOULDBLOCK ? pread(f, who, sizeof who - 1, 0) : -1;
        close(f);
        if (err != EWOULDBLOCK)
            return mimo_error(MIMO_EIO, "%s: cannot lock: %s", path, strerror(err));
        who[n > 0 ? n : 0] = '\0';
        who[strcspn(who, "\n")] = '\0';
        return mimo_error(MIMO_EINVAL, "%s is in use by another mimo train (%s): "
                          "two runs in one directory would destroy each other's "
                          "checkpoints; wait for it to end, or train into another "
                          "--out", dir, who[0] ? who : "holder unknown");
    }
    time_t now = time(NULL);
    struct tm tm;
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    if (localtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    int len = snprintf(who, sizeof who, "pid %ld on host %s, since %s\n",
                       (long)getpid(), host, when);
    if (ftruncate(f, 0) || pwrite(f, who, (size_t)len, 0) != len) {
        /* the lock holds all the same; only its note is missing */
    }
    if ((rc = check_ckpt_dir(dir))) { /* before anything in it is read or removed */
        close(f);
        return rc;
    }
    *fd = f;
    return 0;
}

void mimo_rundir_unlock(int *fd)
{
    if (*fd >= 0)
        close(*fd); /* releases the flock */
    *fd = -1;
}

/* ---- stale temporaries ---------------------------------------------------------- */

/* The pid of a temporary's name "X.tmp.<pid>.<8 hex digits>" (the atomic
 * writer's) or "X.tmp.<pid>" (older mimo's), or 0. */
static long tmp_pid(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t || strstr(t + 5, ".tmp."))
        return 0;
    char *end;
    long pid = strtol(t + 5, &end, 10);
    if (pid <= 0 || end == t + 5)
        return 0;
    if (*end == '.' && strlen(end + 1) == 8 && strspn(end + 1, "0123456789abcdef") == 8)
        end += 9;
    return *end ? 0 : pid;
}

static void clean_dir(const char *dir, int *n, double *bytes)
{
    DIR *d = opendir(dir);
    char path[4600];
    struct stat sb;
    for (struct dirent *e; d && (e = readdir(d));) {
        long pid = tmp_pid(e->d_name);
        if (!pid)
            continue;
        /* ours cannot be yet (nothing written); another's only when dead */
        if (pid != (long)getpid() && !(kill((pid_t)pid, 0) && errno == ESRCH))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && remove(path) == 0)
            ++*n, *bytes += (double)sb.st_size;
    }
    if (d)
        closedir(d);
}

void mimo_rundir_clean_tmp(const char *dir, int *n, double *bytes)
{
    char sub[4200];
    *n = 0, *bytes = 0;
    clean_dir(dir, n, bytes);
    snprintf(sub, sizeof sub, "%s/checkpoints", dir);
    clean_dir(sub, n, bytes);
}

/* ---- the status marker ---------------------------------------------------------- */

static int write_status(const mimo_rundir *d, const char *state, const char *detail)
{
    if (!d->dir)
        return 0;
    char path[4200], text[8192], host[256] = "?", when[64] = "?";
    time_t now = time(NULL);
    struct tm tm;
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    if (localtime_r(&now, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(path, sizeof path, "%s/status", d->dir);
    snprintf(text, sizeof text, "state: %s\npid: %ld\nhost: %s\ntime: %s\n%s%s",
             state, (long)getpid(), host, when, detail ? detail : "",
             detail && *detail && detail[strlen(detail) - 1] != '\n' ? "\n" : "");
    mimo_atomic a;
    int rc = mimo_atomic_begin(&a, path);
    if (!rc && !(rc = mimo_atomic_write(&a, text, strlen(text))))
        rc = mimo_atomic_commit(&a, NULL);
    if (rc)
        mimo_atomic_abort(&a);
    return rc;
}

int mimo_rundir_status(const mimo_rundir *d, const char *state, const char *detail)
{
    return d->rank == 0 ? write_status(d, state, detail) : 0;
}

int mimo_rundir_status_alone(const mimo_rundir *d, const char *detail)
{
    return write_status(d, "failed", detail);
}

/* ---- the directory ---------------------------------------------------------------- */

int mimo_rundir_open(mimo_rundir *d, const char *dir, int keep,
                     const char *config_text, MPI_Comm comm, int rank, int size)
{
    memset(d, 0, sizeof *d);
    d->keep = keep, d->comm = comm, d->rank = rank, d->size = size;
    d->last_gs = -1;
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
    mimo_rundir_wait(d); /* its error, if any, was the run's to report */
    mimo_ckpt_snap_free(&d->snap);
    free(d->pre);
    free(d->dir);
    free(d->ckpt_dir);
    free(d->history);
    memset(d, 0, sizeof *d);
}

/* dir/checkpoints/name, malloc'd (NULL: out of memory). */
static char *ckpt_dir_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + sizeof "/checkpoints/";
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/checkpoints/%s", dir, name);
    return p;
}

/* Whether name is one mimo gives a checkpoint: ckpt-<digits>.h5, last.h5,
 * best.h5. */
static int ckpt_name(const char *name)
{
    size_t len = strlen(name);
    if (!strcmp(name, "last.h5") || !strcmp(name, "best.h5"))
        return 1;
    return len > 8 && !strncmp(name, "ckpt-", 5) && !strcmp(name + len - 3, ".h5") &&
           strspn(name + 5, "0123456789") == len - 8;
}

/* The checkpoints of dir/checkpoints into list (malloc'd names, *n of
 * them); none when it does not exist. Only what mimo wrote there counts:
 * a checkpoint's name, a regular file itself (not a link), and with
 * `marked`, marked as a mimo checkpoint (what --overwrite may delete; a
 * resume tries damaged ones too, to say why it passes them over). */
static int list_checkpoints(const char *dir, int marked, char ***list, size_t *n)
{
    char path[4200];
    size_t cap = 0;
    *list = NULL, *n = 0;
    snprintf(path, sizeof path, "%s/checkpoints", dir);
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        char file[4500];
        struct stat sb;
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        if (!ckpt_name(e->d_name) || lstat(file, &sb) || !S_ISREG(sb.st_mode) ||
            (marked && !mimo_checkpoint_marked(file)))
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
    list_checkpoints(dir, 1, &list, &n);
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

/* Whether a checkpoint written by lineage `theirs` at global step gs lies
 * on lineage `ours` ("A@S/B@T/C"): its writer (the last id of theirs) is
 * C, or an ancestor A whose checkpoint we resumed at step S, with gs <= S
 * (a later one of A's is a branch we left). */
static int on_lineage(const char *ours, const char *theirs, int64_t gs)
{
    const char *slash = strrchr(theirs, '/'), *writer = slash ? slash + 1 : theirs;
    size_t wn = strlen(writer);
    if (!wn || !*ours)
        return 0;
    for (const char *p = ours; *p;) {
        size_t n = strcspn(p, "@/");
        if (n == wn && strncmp(p, writer, n) == 0) {
            if (p[n] != '@')
                return 1; /* the open end: this run */
            return gs <= strtoll(p + n + 1, NULL, 10);
        }
        p += strcspn(p, "/");
        p += *p == '/';
    }
    return 0;
}

typedef struct {
    char *name;
    int64_t gs;
} ckpt_entry;

static int cmp_gs(const void *a, const void *b)
{
    const ckpt_entry *x = a, *y = b;
    return (x->gs > y->gs) - (x->gs < y->gs);
}

/* ---- the background writer ---------------------------------------------- */

/* One save: written on the writer thread, then owned again by the caller
 * once joined (mimo_rundir_wait). */
struct mimo_rundir_job {
    pthread_t thread;
    int threaded;        /* on a thread of its own (to join) */
    mimo_ckpt_snap *snap; /* the file's content to build, or NULL */
    void *buf;           /* the file's bytes (owned unless snap's); NULL:
                            already on disk */
    size_t len;
    char *path;          /* the file (owned) */
    char name[64];       /* what d->last becomes when it is complete */
    char *links[2];      /* its second names (owned) */
    int n_links;
    char **victims;      /* removed once it is complete (owned) */
    size_t n_victims;
    int rc;              /* the outcome, and its message */
    char err[1024];
};
typedef struct mimo_rundir_job job;

static void job_free(job *j)
{
    if (!j->snap) /* else the snapshot's image */
        free(j->buf);
    free(j->path);
    for (int i = 0; i < j->n_links; i++)
        free(j->links[i]);
    for (size_t i = 0; i < j->n_victims; i++)
        free(j->victims[i]);
    free(j->victims);
    free(j);
}

/* checkpoints/name as a job, nothing in it yet. */
static job *job_new(const mimo_rundir *d, const char *name)
{
    job *j = calloc(1, sizeof *j);
    if (j && !(j->path = ckpt_path(d, name))) {
        free(j);
        j = NULL;
    }
    if (j)
        snprintf(j->name, sizeof j->name, "%s", name);
    return j;
}

static int job_link(const mimo_rundir *d, job *j, const char *name)
{
    if (!(j->links[j->n_links] = ckpt_path(d, name)))
        return mimo_error(MIMO_ENOMEM, "out of memory");
    j->n_links++;
    return 0;
}

/* On the writer thread: the file (built from the snapshot first), its
 * second names, the pruning. */
static int job_run(job *j)
{
    int rc = 0;
    if (j->snap) {
        mimo_h5_lock();
        rc = mimo_ckpt_snap_build(j->path, j->snap, &j->buf, &j->len);
        mimo_h5_unlock();
    }
    if (!rc && j->buf)
        rc = mimo_checkpoint_write(j->path, j->buf, j->len);
    if (!j->snap) /* the memory back as soon as it is on disk */
        free(j->buf);
    j->buf = NULL;
    for (int i = 0; i < j->n_links && !rc; i++)
        rc = mimo_atomic_link(j->path, j->links[i]);
    for (size_t i = 0; i < j->n_victims && !rc; i++)
        remove(j->victims[i]);
    return rc;
}

static void *job_thread(void *arg)
{
    job *j = arg;
    if ((j->rc = job_run(j))) /* messages are per thread: keep it */
        snprintf(j->err, sizeof j->err, "%s", mimo_errmsg());
    return NULL;
}

/* Hands j to a writer thread, whose signals are blocked (they stay the
 * training thread's); runs it here when no thread can be started. */
static void job_start(mimo_rundir *d, job *j)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    j->threaded = pthread_create(&j->thread, NULL, job_thread, j) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!j->threaded)
        job_thread(j);
    d->job = j;
}

int mimo_rundir_wait(mimo_rundir *d)
{
    job *j = d->job;
    if (!j)
        return 0;
    if (j->threaded)
        pthread_join(j->thread, NULL);
    d->job = NULL;
    int rc = j->rc;
    if (rc)
        mimo_error(rc, "%s", j->err);
    else
        snprintf(d->last, sizeof d->last, "%s", j->name);
    job_free(j);
    return rc;
}

int mimo_rundir_finish(mimo_rundir *d)
{
    int rc = d->rank == 0 ? mimo_rundir_wait(d) : 0;
    return d->size > 1 ? mimo_agree(d->comm, rc) : rc;
}

/* ---- saves -------------------------------------------------------------------- */

/* The ckpt-*.h5 of this run's lineage to remove once j's file (newer than
 * all) is complete: all but the newest keep - 1 others. A file of another
 * run, or one that cannot be read, is never touched. Read here, on the
 * caller's thread (HDF5). */
static int prune_list(const mimo_rundir *d, job *j, const char *lineage)
{
    DIR *dir = opendir(d->ckpt_dir);
    ckpt_entry *list = NULL;
    size_t n = 0, cap = 0;
    char theirs[MIMO_CKPT_LINEAGE_MAX];
    for (struct dirent *e; dir && (e = readdir(dir));) {
        size_t len = strlen(e->d_name);
        int64_t gs;
        struct stat sb;
        if (strncmp(e->d_name, "ckpt-", 5) || !ckpt_name(e->d_name) || len < 4 ||
            !strcmp(e->d_name, j->name))
            continue;
        char *path = ckpt_path(d, e->d_name);
        int ours = path && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
                   mimo_checkpoint_lineage(path, &gs, theirs, sizeof theirs) &&
                   on_lineage(lineage, theirs, gs);
        free(path);
        if (!ours)
            continue;
        if (n == cap) {
            ckpt_entry *l = realloc(list, sizeof *l * (cap = cap ? 2 * cap : 16));
            if (!l)
                break;
            list = l;
        }
        if ((list[n].name = mimo_strdup(e->d_name)))
            list[n++].gs = gs;
    }
    if (dir)
        closedir(dir);
    if (n)
        qsort(list, n, sizeof *list, cmp_gs);
    long go = (long)n - (d->keep - 1);
    if (go > 0 && !(j->victims = calloc((size_t)go, sizeof *j->victims)))
        go = 0; /* out of memory: prune next time */
    for (size_t i = 0; i < n; i++) {
        if ((long)i < go && (j->victims[j->n_victims] = ckpt_path(d, list[i].name)))
            j->n_victims++;
        free(list[i].name);
    }
    free(list);
    return 0;
}

/* Whether a snapshot of m (and the file built from it) fit in a quarter
 * of the memory available: else the file is built on the caller's thread
 * from the model itself (or, larger still, written at once). */
static int snapshot_fits(mimo_model *m)
{
    double mem = mimo_available_bytes();
    return mem <= 0 || 2.0 * (double)mimo_ckpt_snap_bytes(m) < mem / 4;
}

/* Rank 0: waits for the save before, snapshots the model (or builds the
 * file) and hands checkpoints/name to the writer. */
static int submit(mimo_rundir *d, const char *name, mimo_model *m,
                  const mimo_ckpt_state *st, const mimo_real *best, int also_best,
                  int periodic)
{
    int rc = mimo_rundir_wait(d);
    if (rc)
        return rc;
    job *j = job_new(d, name);
    if (!j)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    if (d->snap.buf || snapshot_fits(m)) { /* built by the writer */
        rc = mimo_ckpt_snap_take(&d->snap, m, st, best);
        d->snap.pre = d->pre, d->snap.pre_len = d->pre_len;
        j->snap = &d->snap;
    } else { /* no room for a copy: built here, the model still */
        rc = mimo_checkpoint_build(j->path, m, st, best, d->pre, d->pre_len,
                                   &j->buf, &j->len);
    }
    if (!rc && also_best)
        rc = job_link(d, j, "best.h5");
    if (!rc && periodic)
        rc = prune_list(d, j, st->lineage);
    if (rc) {
        job_free(j);
        return rc;
    }
    job_start(d, j);
    return 0;
}

/* The success of a save agreed; every rank then knows its step. */
static int agreed_save(mimo_rundir *d, int rc, int64_t global_step)
{
    rc = d->size > 1 ? mimo_agree(d->comm, rc) : rc;
    if (!rc)
        d->last_gs = global_step;
    return rc;
}

int mimo_rundir_save(mimo_rundir *d, const char *name, mimo_model *m,
                     const mimo_ckpt_state *st, const mimo_real *best)
{
    int rc = d->rank == 0 ? submit(d, name, m, st, best, 0, 0) : 0;
    return agreed_save(d, rc, st->global_step);
}

int mimo_rundir_save_periodic(mimo_rundir *d, mimo_model *m,
                              const mimo_ckpt_state *st, const mimo_real *best,
                              int also_best)
{
    char name[64];
    snprintf(name, sizeof name, "ckpt-%012lld.h5", (long long)st->global_step);
    int rc = d->rank == 0 ? submit(d, name, m, st, best, also_best, 1) : 0;
    return agreed_save(d, rc, st->global_step);
}

/* Rank 0: name as a second name of the newest complete checkpoint. */
static int submit_link(mimo_rundir *d, const char *name)
{
    int rc = mimo_rundir_wait(d);
    if (rc)
        return rc;
    if (!d->last[0])
        return mimo_error(MIMO_EINVAL, "%s: no checkpoint to link it to", name);
    job *j = job_new(d, d->last);
    if (!j)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    if ((rc = job_link(d, j, name))) {
        job_free(j);
        return rc;
    }
    snprintf(j->name, sizeof j->name, "%s", name);
    job_start(d, j);
    return 0;
}

int mimo_rundir_link(mimo_rundir *d, const char *name)
{
    int rc = d->rank == 0 ? submit_link(d, name) : 0;
    return d->size > 1 ? mimo_agree(d->comm, rc) : rc;
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
        return mimo_error(MIMO_EINVAL, "%s: no valid checkpoint (checkpoints/*.h5 "
                          "that load) in this run directory", dir_or_file);
    return 0;
}

/* ---- what --resume auto tries ------------------------------------------- */

typedef struct {
    mimo_resume_entry e;
    int last;               /* named last.h5 */
    dev_t dev;
    ino_t ino;
} resume_item;

static int by_newest(const void *pa, const void *pb)
{
    const resume_item *a = pa, *b = pb;
    if (a->e.gs != b->e.gs)
        return (a->e.gs < b->e.gs) - (a->e.gs > b->e.gs);
    if (a->last != b->last)
        return b->last - a->last;
    return strcmp(a->e.path, b->e.path);
}

/* The step a file holds, else the one its name says, else the newest. */
static int64_t resume_step(const char *path, const char *name)
{
    int64_t gs;
    long long v;
    char tail;
    if (mimo_checkpoint_probe(path, &gs))
        return gs;
    if (sscanf(name, "ckpt-%lld.h%c", &v, &tail) == 2 && tail == '5' && v >= 0)
        return (int64_t)v;
    return INT64_MAX;
}

int mimo_resume_list(const char *dir, mimo_resume_entry **list, size_t *n)
{
    char **names;
    size_t k = 0, count;
    resume_item *it;
    *list = NULL, *n = 0;
    list_checkpoints(dir, 0, &names, &count);
    it = calloc(count + 1, sizeof *it);
    for (size_t i = 0; i < count; i++) {
        struct stat sb;
        char *path = it && strcmp(names[i], "best.h5") ? ckpt_dir_path(dir, names[i]) : NULL;
        if (path && !stat(path, &sb)) {
            it[k] = (resume_item){{path, resume_step(path, names[i]), 0},
                                  strcmp(names[i], "last.h5") == 0, sb.st_dev, sb.st_ino};
            k++;
        } else {
            free(path);
        }
        free(names[i]);
    }
    free(names);
    if (!it)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    qsort(it, k, sizeof *it, by_newest);
    *list = malloc(sizeof **list * (k + 1));
    if (!*list) {
        for (size_t i = 0; i < k; i++)
            free(it[i].e.path);
        free(it);
        return mimo_error(MIMO_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < k; i++) {
        (*list)[i] = it[i].e;
        (*list)[i].file = i;
        for (size_t j = 0; j < i; j++) /* another name of an earlier one */
            if (it[j].dev == it[i].dev && it[j].ino == it[i].ino) {
                (*list)[i].file = j;
                break;
            }
    }
    *n = k;
    free(it);
    return 0;
}

void mimo_resume_list_free(mimo_resume_entry **list, size_t n)
{
    for (size_t i = 0; *list && i < n; i++)
        free((*list)[i].path);
    free(*list);
    *list = NULL;
}
