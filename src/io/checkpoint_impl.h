/* checkpoint_impl.h — a checkpoint save in parts, for the run directory's
 * background writer (train/rundir.c): a snapshot of what changes during
 * training (parameters, optimizer moments, best parameters, run state),
 * taken on the training thread (copies only); building the file from it
 * in memory (HDF5: under mimo_h5_lock, as HDF5 is not thread-safe here);
 * writing the finished bytes (no HDF5). The last two run on the writer
 * thread. Not exported. */
#ifndef MIMO_IO_CHECKPOINT_IMPL_H
#define MIMO_IO_CHECKPOINT_IMPL_H

#include <stddef.h>

#include "mimo/checkpoint.h"

/* Testing only, and only in a build with MIMO_TEST_HOOKS (CMake option
 * of the same name, on when the tests are built; never installed or
 * exported): called during a save after the data is written and before
 * the rename; a test sets it to kill the process there. Without the
 * option the save has no hook at all. */
#ifdef MIMO_TEST_HOOKS
extern void (*mimo_checkpoint_fault_hook)(void);
#define MIMO_CKPT_FAULT_HOOK mimo_checkpoint_fault_hook
#else
#define MIMO_CKPT_FAULT_HOOK NULL
#endif

/* The optimizer moments a checkpoint holds at most (Adam: m and v). */
#define MIMO_CKPT_MAX_SLOTS 2

/* A model's changing state, copied: buf holds the parameters (n), each
 * optimizer moment (trained), the best parameters (n, when has_best); st
 * a deep copy of the run state. Its buffer is allocated by the first
 * take and reused after (the sizes hold for a run). The model itself is
 * borrowed for its graph and config, which do not change during a run. */
typedef struct {
    mimo_model *model;
    mimo_real *buf;
    size_t n, trained;
    int n_slots, has_best;
    long long steps;
    mimo_ckpt_state st;
    void *image;       /* the last file built from it, its buffer kept for */
    size_t image_cap;  /* the next (no fresh pages to fault in and clear) */
    const void *pre;   /* the training data's /preprocessing (an image, */
    size_t pre_len;    /* io/prep.h; borrowed) copied in, or NULL */
} mimo_ckpt_snap;

/* The bytes a snapshot of m holds (besides its small run state). */
size_t mimo_ckpt_snap_bytes(mimo_model *m);
/* s = a copy of m's parameters and moments, best (may be NULL) and st. */
int mimo_ckpt_snap_take(mimo_ckpt_snap *s, mimo_model *m, const mimo_ckpt_state *st,
                        const mimo_real *best);
/* mimo_checkpoint_build from a snapshot: any one thread at a time, the
 * caller holding mimo_h5_lock. *buf is s->image (the snapshot's: never
 * free it; valid until the next build) or NULL (written at once). */
int mimo_ckpt_snap_build(const char *path, mimo_ckpt_snap *s, void **buf,
                         size_t *len);
void mimo_ckpt_snap_free(mimo_ckpt_snap *s);

/* About how many bytes a checkpoint of m takes (and its image in memory). */
size_t mimo_checkpoint_estimate(mimo_model *m);

/* Builds the checkpoint file for path in memory: *buf (malloc'd, the
 * caller frees it) of *len bytes; pre (may be NULL): an image of the
 * training data's /preprocessing (io/prep.h) the file carries. A checkpoint larger than half the
 * available memory is written to path at once instead (atomically, after
 * a free-space check), and *buf is NULL. */
int mimo_checkpoint_build(const char *path, mimo_model *m, const mimo_ckpt_state *st,
                          const mimo_real *best, const void *pre, size_t pre_len,
                          void **buf, size_t *len);

/* The checkpoint's /preprocessing (verified against its checksum) as an
 * image (io/prep.h; *buf malloc'd), or *buf NULL when it has none. */
int mimo_checkpoint_prep(const char *path, void **buf, size_t *len);

/* Writes buf as path through the atomic writer (tmp, write, fsync,
 * mimo_checkpoint_fault_hook, rename, directory fsync). No HDF5: any
 * thread may call it. */
int mimo_checkpoint_write(const char *path, const void *buf, size_t len);

/* Whether path is marked as a mimo checkpoint (an HDF5 file whose root
 * says format "mimo-checkpoint"), however damaged its content: what
 * --overwrite may delete. Leaves the error message as it was. */
int mimo_checkpoint_marked(const char *path);

#endif
