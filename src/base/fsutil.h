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
 * complete new one under its name, never a torn one: the caller writes
 * a->tmp (PATH.tmp.<pid>, in PATH's directory, which must exist) and
 * closes it; commit fsyncs it, calls before_rename (a test's fault
 * injection; may be NULL), renames it over PATH and fsyncs the directory;
 * abort (also after a failed commit) removes it. */
typedef struct {
    char path[4096];
    char tmp[4200];
} mimo_atomic;

int mimo_atomic_begin(mimo_atomic *a, const char *path);

/* Bytes the machine can still give this process: the smaller of
 * /proc/meminfo's MemAvailable and what the cgroup (v2) allows; 0 when
 * unknown. */
double mimo_available_bytes(void);
/* Bytes free on the file system of path's directory; -1 when unknown. */
double mimo_free_bytes(const char *path);
/* Writes len bytes of buf as a->tmp, fsynced and closed; on failure it is
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

#endif
