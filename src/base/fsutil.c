/* fsutil.c — mkdir -p, for run directories and output files whose parent
 * directories do not exist yet. */
#define _POSIX_C_SOURCE 200809L /* mkdir */
#include "base/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
