/* fsutil.h — small file-system helpers shared inside the library. */
#ifndef MIMO_FSUTIL_H
#define MIMO_FSUTIL_H

/* mkdir -p path. Returns 0 or MIMO_EIO naming the directory. */
int mimo_mkdirs(const char *path);

/* Creates the directories above the file `path` (nothing if none). */
int mimo_mkdirs_for(const char *path);

#endif
