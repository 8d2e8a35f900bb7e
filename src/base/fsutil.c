/* fsutil.c — mkdir -p, for run directories and output files whose parent
 * directories do not exist yet; atomic file writes (tmp, fsync, rename,
 * directory fsync), and atomic second names (hard links, or copies);
 * opening inputs only when they are regular files, and whether two paths
 * name one file. A temporary is created by mimo itself (O_CREAT|O_EXCL,
 * an unguessable name): mimo never writes through a name someone else
 * planted, nor renames a file it did not write. */
#define _DEFAULT_SOURCE /* mkdir, fsync, O_DIRECTORY, O_NOFOLLOW, getrandom */
#include "base/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "mimo/error.h"

int mimo_mkdirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return mimo_error(MIMO_EINVAL, "path too long: %s", path);
    for (char *p = buf + 1; ; p++) {
        char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            if (mkdir(buf, 0777) && errno != EEXIST)
                return mimo_error(MIMO_EIO, "%s: cannot create directory: %s", buf,
                                  strerror(errno));
            if (c == '\0')
                return 0;
            *p = '/';
        }
    }
}

int mimo_mkdirs_for(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    if ((size_t)(slash - path) >= sizeof dir)
        return mimo_error(MIMO_EINVAL, "path too long: %s", path);
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    return mimo_mkdirs(dir);
}

/* 32 bits no other process can guess: the kernel's, else the clock's
 * nanoseconds mixed with a counter (the temporary is created O_EXCL all
 * the same: a guess only makes the create fail, and it is retried). */
static uint32_t unguessable(void)
{
    static unsigned counter;
    uint32_t r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
        return r;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                 ((uint64_t)__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) << 20);
    x *= 0x9e3779b97f4a7c15ull; /* spread the bits */
    return (uint32_t)(x >> 32);
}

/* a->tmp = "PATH.tmp.<pid>.<8 hex digits>", a new random suffix each call
 * (the pid lets a later run remove a dead writer's temporaries). */
static void tmp_name(mimo_atomic *a)
{
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld.%08x", a->path, (long)getpid(),
             (unsigned)unguessable());
}

/* The temporary's identity, to check before renaming or removing it. */
static void remember(mimo_atomic *a, const struct stat *sb)
{
    a->dev = (unsigned long long)sb->st_dev;
    a->ino = (unsigned long long)sb->st_ino;
}

/* Whether a->tmp is still the regular file mimo created (not replaced,
 * not a symbolic link). */
static int still_ours(const mimo_atomic *a)
{
    struct stat sb;
    return lstat(a->tmp, &sb) == 0 && S_ISREG(sb.st_mode) &&
           (unsigned long long)sb.st_dev == a->dev &&
           (unsigned long long)sb.st_ino == a->ino;
}

static int start(mimo_atomic *a, const char *path)
{
    a->fd = -1, a->tmp[0] = '\0', a->dev = a->ino = 0;
    if (snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path)
        return mimo_error(MIMO_EINVAL, "path too long: %s", path);
    return 0;
}

int mimo_atomic_begin(mimo_atomic *a, const char *path)
{
    int rc = start(a, path), err = EEXIST;
    struct stat sb;
    for (int tries = 0; !rc && err == EEXIST && tries < 100; tries++) {
        tmp_name(a);
        /* O_EXCL: a name that exists (a planted file or symbolic link) is
         * never opened; O_NOFOLLOW says so again */
        a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        err = a->fd < 0 ? errno : 0;
    }
    if (rc)
        return rc;
    if (err || fstat(a->fd, &sb)) {
        err = err ? err : errno;
        if (a->fd >= 0) {
            close(a->fd);
            unlink(a->tmp);
        }
        a->fd = -1, a->tmp[0] = '\0';
        return mimo_error(MIMO_EIO, "%s: cannot create: %s", path, strerror(err));
    }
    remember(a, &sb);
    return 0;
}

int mimo_atomic_fd_path(const mimo_atomic *a, char *buf, size_t len)
{
    char self[64];
    struct stat sb;
    snprintf(self, sizeof self, "/proc/self/fd/%d", a->fd);
    /* the kernel's name of the open file, whatever its name now: a name
     * swapped for a link after the create is not followed */
    if (a->fd >= 0 && stat(self, &sb) == 0 && (unsigned long long)sb.st_ino == a->ino &&
        (unsigned long long)sb.st_dev == a->dev)
        return snprintf(buf, len, "%s", self) < (int)len ? 0 : -1;
    return snprintf(buf, len, "%s", a->tmp) < (int)len ? 0 : -1;
}

/* fsyncs a directory by path (best effort). */
static void sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int mimo_atomic_commit(mimo_atomic *a, void (*before_rename)(void))
{
    char dir[4096];
    if (a->fd >= 0) { /* written by the caller through the descriptor */
        int err = fsync(a->fd) ? errno : 0;
        if (close(a->fd) && !err)
            err = errno;
        a->fd = -1;
        if (err)
            return mimo_error(MIMO_EIO, "%s: fsync failed: %s", a->tmp, strerror(err));
    }
    if (before_rename)
        before_rename();
    /* rename() replaces a link at PATH, never writes through it; the
     * temporary must still be the file written here */
    if (!still_ours(a))
        return mimo_error(MIMO_EIO, "%s: not written: its temporary %s was replaced "
                          "or removed by another process while mimo wrote it",
                          a->path, a->tmp);
    if (rename(a->tmp, a->path))
        return mimo_error(MIMO_EIO, "%s: cannot write (renaming %s onto it: %s)",
                          a->path, a->tmp, strerror(errno));
    a->tmp[0] = '\0';
    snprintf(dir, sizeof dir, "%s", a->path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    sync_dir(dir);
    return 0;
}

double mimo_available_bytes(void)
{
    double avail = 0, kb, max = 0, cur = 0;
    char line[256];
    FILE *f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1)
            avail = kb * 1024;
    if (f)
        fclose(f);
    if ((f = fopen("/sys/fs/cgroup/memory.max", "r"))) {
        if (fscanf(f, "%lf", &max) != 1)
            max = 0; /* "max": no limit */
        fclose(f);
    }
    if (max > 0 && (f = fopen("/sys/fs/cgroup/memory.current", "r"))) {
        if (fscanf(f, "%lf", &cur) == 1 && (avail == 0 || max - cur < avail))
            avail = max - cur > 0 ? max - cur : 1;
        fclose(f);
    }
    return avail;
}

double mimo_free_bytes(const char *path)
{
    char dir[4096];
    struct statvfs vfs;
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    if (statvfs(slash ? dir : ".", &vfs))
        return -1;
    return (double)vfs.f_bavail * (double)vfs.f_frsize;
}

/* "1.2 MB" */
static void human(double bytes, char *buf, size_t len)
{
    if (bytes < 1e6)
        snprintf(buf, len, "%.0f kB", bytes / 1e3);
    else if (bytes < 1e9)
        snprintf(buf, len, "%.1f MB", bytes / 1e6);
    else
        snprintf(buf, len, "%.2f GB", bytes / 1e9);
}

int mimo_atomic_write(mimo_atomic *a, const void *buf, size_t len)
{
    int fd = a->fd, err = fd < 0 ? EBADF : 0;
    const char *p = buf;
    size_t done = 0;
    a->fd = -1; /* closed here, fsynced first */
    while (!err && done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0 && errno != EINTR)
            err = errno;
        else if (n > 0)
            done += (size_t)n;
    }
    if (!err && fsync(fd))
        err = errno;
    if (fd >= 0 && close(fd) && !err)
        err = errno;
    if (!err)
        return 0;
    mimo_atomic_abort(a);
    char need[32], avail[32] = "", dir[4096];
    struct statvfs vfs;
    snprintf(dir, sizeof dir, "%s", a->path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    human((double)len, need, sizeof need);
    if (statvfs(slash ? dir : ".", &vfs) == 0) {
        human((double)vfs.f_bavail * (double)vfs.f_frsize, avail, sizeof avail);
        return mimo_error(MIMO_EIO, "%s: cannot write: %s (the file needs %s; %s "
                          "free on that file system)", a->path, strerror(err), need,
                          avail);
    }
    return mimo_error(MIMO_EIO, "%s: cannot write: %s (the file needs %s)", a->path,
                      strerror(err), need);
}

void mimo_atomic_abort(mimo_atomic *a)
{
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    if (a->tmp[0] && still_ours(a)) /* another's file under its name stays */
        unlink(a->tmp);
    a->tmp[0] = '\0';
}

/* Copies src into dst's temporary (created), fsynced (the fallback of
 * mimo_atomic_link). */
static int copy_to_tmp(const char *src, mimo_atomic *a)
{
    int in = -1, err = 0;
    char buf[1 << 16];
    int rc = mimo_atomic_begin(a, a->path);
    if (rc)
        return rc;
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
        err = errno;
    for (ssize_t n; !err && (n = read(in, buf, sizeof buf)) != 0;) {
        for (ssize_t done = 0, w; !err && n > 0 && done < n; done += w > 0 ? w : 0)
            if ((w = write(a->fd, buf + done, (size_t)(n - done))) < 0 && errno != EINTR)
                err = errno;
        if (n < 0 && errno != EINTR)
            err = errno;
    }
    if (in >= 0)
        close(in);
    if (err)
        return mimo_error(MIMO_EIO, "%s: cannot write (copying %s: %s)", a->path, src,
                          strerror(err));
    return 0; /* commit fsyncs and closes it */
}

int mimo_atomic_link(const char *src, const char *dst)
{
    mimo_atomic a;
    int rc = start(&a, dst), e = EEXIST;
    struct stat sb;
    for (int tries = 0; !rc && e == EEXIST && tries < 100; tries++) {
        tmp_name(&a); /* link() never follows nor replaces an existing name */
        e = link(src, a.tmp) ? errno : 0;
    }
    if (rc)
        return rc;
    if (!e && lstat(a.tmp, &sb)) {
        e = errno;
        unlink(a.tmp);
    }
    if (!e) {
        remember(&a, &sb);
    } else if (e == EXDEV || e == EPERM || e == ENOTSUP || e == EMLINK || e == ENOSYS) {
        rc = copy_to_tmp(src, &a);
    } else {
        a.tmp[0] = '\0';
        return mimo_error(MIMO_EIO, "%s: cannot write (linking %s: %s)", dst, src,
                          strerror(e));
    }
    if (!rc)
        rc = mimo_atomic_commit(&a, NULL);
    if (rc)
        mimo_atomic_abort(&a);
    return rc;
}

/* ---- inputs --------------------------------------------------------------- */

/* "a FIFO", "a directory": what st_mode is, for messages. */
static const char *file_kind(mode_t m)
{
    return S_ISFIFO(m) ? "a FIFO (named pipe)" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISDIR(m) ? "a directory"
         : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

int mimo_open_regular(const char *path, const char *what, int *fd)
{
    struct stat sb;
    *fd = -1;
    /* O_NONBLOCK: opening a FIFO does not wait for a writer; fstat then
     * judges the very file opened (no race with a rename) */
    int f = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (f < 0)
        return mimo_error(MIMO_EIO, "%s: cannot open%s%s: %s", path, what ? " " : "",
                          what ? what : "", strerror(errno));
    if (fstat(f, &sb)) {
        int err = errno;
        close(f);
        return mimo_error(MIMO_EIO, "%s: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(f);
        return mimo_error(MIMO_EINVAL, "%s: %s is %s: mimo reads only regular files",
                          path, what ? what : "the file", file_kind(sb.st_mode));
    }
    int flags = fcntl(f, F_GETFL);
    if (flags >= 0)
        fcntl(f, F_SETFL, flags & ~O_NONBLOCK);
    *fd = f;
    return 0;
}

int mimo_check_regular(const char *path, const char *what)
{
    int fd, rc = mimo_open_regular(path, what, &fd);
    if (!rc)
        close(fd);
    return rc;
}

int mimo_same_file(const char *a, const char *b)
{
    struct stat x, y;
    return a && b && stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev &&
           x.st_ino == y.st_ino;
}

int mimo_check_not_input(const char *out, const char *const *inputs, int n)
{
    for (int i = 0; i < n; i++)
        if (mimo_same_file(out, inputs[i]))
            return mimo_error(MIMO_EINVAL, "%s: the output is the input file %s (the "
                              "same file%s): mimo will not write over its own input; "
                              "choose another output", out, inputs[i],
                              strcmp(out, inputs[i]) ? ", through a link" : "");
    return 0;
}
