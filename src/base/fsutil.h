/* fsutil.h — file-system helpers shared inside the library: directories,
 * and the one atomic way mimo writes a file. */
#ifndef MIMO_FSUTIL_H
#define MIMO_FSUTIL_H

#include <stddef.h>

/* mkdir -p path. Returns 0 or MIMO_EIO naming the directory. */
int mimo_mkdirs(const char *path);

/* Creates the directories above the file `path` (nothing if none). */
int mimo_mkdirs_for(const char *path);

/* Writing a file so that a crash at any moment leaves the old file or the
 * complete new one under its name, never a torn one: begin creates the
 * temporary a->tmp (PATH.tmp.<pid>.<random>, in PATH's directory, which
 * must exist) with O_CREAT|O_EXCL|O_NOFOLLOW, open as a->fd: a name
 * planted beforehand (a symbolic link, a file) is never written through.
 * The caller writes it (mimo_atomic_write, or through a->fd, or
 * mimo_atomic_fd_path); commit fsyncs and closes it, calls before_rename
 * (a test's fault injection; may be NULL), checks that the name is still
 * the file created (same device and inode, not a link), renames it over
 * PATH (a link at PATH is replaced, not followed) and fsyncs the
 * directory; abort (also after a failed commit) closes and removes it. */
typedef struct {
    char path[4096];
    char tmp[4200];
    int fd;                      /* the temporary, open; -1 once closed */
    unsigned long long dev, ino; /* the temporary's identity */
} mimo_atomic;

int mimo_atomic_begin(mimo_atomic *a, const char *path);

/* Bytes the machine can still give this process: the smaller of
 * /proc/meminfo's MemAvailable and what the cgroup (v2) allows; 0 when
 * unknown. */
double mimo_available_bytes(void);
/* Bytes free on the file system of path's directory; -1 when unknown. */
double mimo_free_bytes(const char *path);
/* A name that opens the temporary itself for a library that opens files
 * by name (HDF5): /proc/self/fd/N when there is one, else a->tmp. */
int mimo_atomic_fd_path(const mimo_atomic *a, char *buf, size_t len);
/* Writes len bytes of buf into a->tmp, fsynced and closed; on failure it is
 * removed and the error names PATH, the system's reason ("No space left
 * on device") and how many bytes were needed and free. */
int mimo_atomic_write(mimo_atomic *a, const void *buf, size_t len);
int mimo_atomic_commit(mimo_atomic *a, void (*before_rename)(void));
void mimo_atomic_abort(mimo_atomic *a);

/* dst becomes another name of the complete file src, atomically: a hard
 * link under dst's temporary name, renamed over dst (the directory
 * fsynced), so a crash leaves the old dst or the new one. Where the file
 * system has no hard links (link() fails with EXDEV, EPERM, ENOTSUP,
 * EMLINK, ENOSYS) src is copied instead, through the atomic writer. */
int mimo_atomic_link(const char *src, const char *dst);

/* Opens path for reading (*fd) only when it is a regular file: a FIFO, a
 * device (/dev/zero), a socket or a directory is refused with a message
 * naming path and what it is ("what": "config file", or NULL). Opened
 * O_NONBLOCK and judged by fstat, so a FIFO never blocks the open. */
int mimo_open_regular(const char *path, const char *what, int *fd);
/* The same check, the file closed again (for libraries that open by name). */
int mimo_check_regular(const char *path, const char *what);

/* Whether paths a and b name one file (device and inode: through
 * symbolic and hard links too); 0 when either does not exist. */
int mimo_same_file(const char *a, const char *b);
/* An error when `out` is the same file as one of the n inputs (NULL
 * entries skipped): mimo never writes over its own input. */
int mimo_check_not_input(const char *out, const char *const *inputs, int n);

#endif
