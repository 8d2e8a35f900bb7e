/* fsutil.c — mkdir -p, for run directories and output files whose parent
 * directories do not exist yet; atomic file writes (tmp, fsync, rename,
 * directory fsync), and atomic second names (hard links, or copies). */
#define _POSIX_C_SOURCE 200809L /* mkdir, fsync, O_DIRECTORY */
#include "base/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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

int mimo_atomic_begin(mimo_atomic *a, const char *path)
{
    if (snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path)
        return mimo_error(MIMO_EINVAL, "path too long: %s", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp.%ld", path, (long)getpid());
    return 0;
}

/* fsyncs a file or directory by path (best effort for directories). */
static int sync_path(const char *path, int dir)
{
    int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0)
        return dir ? 0 : -1;
    int rc = fsync(fd);
    close(fd);
    return dir ? 0 : rc;
}

int mimo_atomic_commit(mimo_atomic *a, void (*before_rename)(void))
{
    char dir[4096];
    if (sync_path(a->tmp, 0))
        return mimo_error(MIMO_EIO, "%s: fsync failed: %s", a->tmp, strerror(errno));
    if (before_rename)
        before_rename();
    if (rename(a->tmp, a->path))
        return mimo_error(MIMO_EIO, "%s: cannot write (renaming %s onto it: %s)",
                          a->path, a->tmp, strerror(errno));
    snprintf(dir, sizeof dir, "%s", a->path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    sync_path(dir, 1);
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
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666), err = 0;
    const char *p = buf;
    size_t done = 0;
    if (fd < 0)
        err = errno;
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
    remove(a->tmp);
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
    if (a->tmp[0])
        remove(a->tmp);
}

/* Copies src into a->tmp, fsynced (the fallback of mimo_atomic_link). */
static int copy_to_tmp(const char *src, mimo_atomic *a)
{
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, err = 0;
    char buf[1 << 16];
    if (in < 0 || (out = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666)) < 0)
        err = errno;
    for (ssize_t n; !err && (n = read(in, buf, sizeof buf)) != 0;) {
        for (ssize_t done = 0, w; !err && n > 0 && done < n; done += w > 0 ? w : 0)
            if ((w = write(out, buf + done, (size_t)(n - done))) < 0 && errno != EINTR)
                err = errno;
        if (n < 0 && errno != EINTR)
            err = errno;
    }
    if (!err && fsync(out))
        err = errno;
    if (out >= 0 && close(out) && !err)
        err = errno;
    if (in >= 0)
        close(in);
    if (err)
        return mimo_error(MIMO_EIO, "%s: cannot write (copying %s: %s)", a->path, src,
                          strerror(err));
    return 0;
}

int mimo_atomic_link(const char *src, const char *dst)
{
    mimo_atomic a;
    int rc = mimo_atomic_begin(&a, dst);
    if (rc)
        return rc;
    unlink(a.tmp); /* a leftover of this pid: link() does not replace */
    if (link(src, a.tmp)) {
        int e = errno;
        if (e != EXDEV && e != EPERM && e != ENOTSUP && e != EMLINK && e != ENOSYS)
            return mimo_error(MIMO_EIO, "%s: cannot write (linking %s: %s)", dst, src,
                              strerror(e));
        rc = copy_to_tmp(src, &a);
    }
    if (!rc)
        rc = mimo_atomic_commit(&a, NULL);
    if (rc)
        mimo_atomic_abort(&a);
    return rc;
}
