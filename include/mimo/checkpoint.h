/* checkpoint.h — self-describing HDF5 checkpoints (layout in README.md):
 * the config text, parameters, optimizer moments and step count, the
 * training position, and (mimo train, when the training file has it) the
 * data's /preprocessing, so that predict/eval need nothing else (a raw CSV
 * included) and a resumed run continues bitwise where it stopped. Saves
 * are atomic: written under a temporary name, flushed and synced, then
 * renamed over the real name. */
#ifndef MIMO_CHECKPOINT_H
#define MIMO_CHECKPOINT_H

#include "mimo/api.h"

#include <stdint.h>

#include "mimo/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2: Fletcher32 on every tensor and state_crc32 (1 still reads) */
#define MIMO_CKPT_FORMAT_VERSION 2
#define MIMO_CKPT_NAME_MAX 64 /* an extra's name, with its NUL */
#define MIMO_CKPT_LINEAGE_MAX 1024
/* What a checkpoint's counters may hold (larger ones are damage): epochs
 * and steps of an epoch below 2^31, steps and samples below 2^53. */
#define MIMO_CKPT_MAX_EPOCH ((int64_t)1 << 31)
#define MIMO_CKPT_MAX_COUNT ((int64_t)1 << 53)

/* Where training stands. epoch/step: the next step to run is `step` of
 * epoch `epoch` (0-based). extra: named numbers of the trainer's own
 * state (callbacks, best values, partial sums), stored as root
 * attributes; as many as it needs (free with mimo_ckpt_state_free). */
typedef struct {
    char name[MIMO_CKPT_NAME_MAX];
    double value;
} mimo_ckpt_extra;

/* A named vector of the trainer's state (an epoch's metric sums), stored
 * as the dataset /state/<name>. */
typedef struct {
    char name[MIMO_CKPT_NAME_MAX];
    double *v;
    size_t n;
} mimo_ckpt_array;

typedef struct {
    int64_t epoch, step, global_step, samples_seen;
    int64_t world_size;
    uint64_t seed;
    double lr;
    int n_extra, cap_extra;
    mimo_ckpt_extra *extra;
    int n_array;
    mimo_ckpt_array *array;
    /* which run wrote it: "ID" for a run started afresh, "A@S/ID" for one
     * that resumed run A's checkpoint of global step S (and so on back);
     * "" when unknown. A run's pruning touches only its own lineage. */
    char lineage[MIMO_CKPT_LINEAGE_MAX];
} mimo_ckpt_state;

/* Sets name = value in st->extra (added or replaced). Returns 0, or
 * MIMO_EINVAL for a name of MIMO_CKPT_NAME_MAX or more characters, or
 * MIMO_ENOMEM. */
MIMO_API int mimo_ckpt_set(mimo_ckpt_state *st, const char *name, double value);
/* Sets name = v[0, n) (a copy) in st->array; a load fills the arrays
 * named before it from the file (n = 0 when the file has none). */
MIMO_API int mimo_ckpt_set_array(mimo_ckpt_state *st, const char *name,
                                 const double *v, size_t n);
/* The array called name (*n values), or NULL. */
MIMO_API const double *mimo_ckpt_get_array(const mimo_ckpt_state *st,
                                           const char *name, size_t *n);
/* Frees the extras and arrays (the state stays usable, with none). */
MIMO_API void mimo_ckpt_state_free(mimo_ckpt_state *st);
/* Value of name in st->extra, or dflt when absent. */
MIMO_API double mimo_ckpt_get(const mimo_ckpt_state *st, const char *name, double dflt);

/* Writes m (config text, params, optimizer) and st to path, atomically.
 * best (may be NULL) is a second parameter set stored under /best_params
 * (EarlyStopping's restore_best). Not collective: call on one rank. */
MIMO_API int mimo_checkpoint_save(const char *path, mimo_model *m,
                         const mimo_ckpt_state *st, const mimo_real *best);

/* What a save of g's run takes, about, in bytes: *file, the checkpoint
 * file (tensors, checksums, HDF5's metadata, the config; within a few
 * percent for the configs/ networks; more inside an epoch with an auc
 * metric: its scores so far); *snapshot, the copy of the parameters and
 * optimizer moments (and best parameters) rank 0 takes for the writer. */
MIMO_API void mimo_checkpoint_sizes(const mimo_graph *g, double *file,
                                    double *snapshot);

/* Reads the config text of a checkpoint into *spec (parsed as the run
 * used it, with the n_sets overrides applied on top). */
MIMO_API int mimo_checkpoint_spec(const char *path, const char *const *sets, int n_sets,
                         mimo_spec *spec);

/* Loads params, optimizer moments and state from path into m, whose spec
 * must describe the same network. Verifies the file's checksums (a
 * damaged tensor or state is an error naming the file and what is
 * damaged), that every tensor is finite and every counter in range. best (may be NULL) receives
 * /best_params when present; *has_best tells whether it was. */
MIMO_API int mimo_checkpoint_load(const char *path, mimo_model *m, mimo_ckpt_state *st,
                         mimo_real *best, int *has_best);

/* Starts m from the parameters of any HDF5 file with every tensor of m
 * under /params/<layer>/<tensor> (e.g. written with h5py), in its shape,
 * or fails naming the first one missing or of another shape (--init
 * --init-strict); optimizer state is left fresh. */
MIMO_API int mimo_checkpoint_init_params(const char *path, mimo_model *m);

/* What --init by name did with a tensor. */
typedef enum {
    MIMO_INIT_LOADED,   /* read from the file */
    MIMO_INIT_NEW,      /* not in the file: keeps its initial values */
    MIMO_INIT_MISMATCH, /* in the file with another shape: keeps them too */
    MIMO_INIT_UNUSED    /* in the file, read by no tensor of the network */
} mimo_init_status;

/* One line of the report: the tensor ("layer/name": the network's; for
 * UNUSED the file's entry), its shape ("(64, 2)") and, for MISMATCH, the
 * file's. */
typedef void (*mimo_init_report)(void *user, const char *tensor,
                                 mimo_init_status status, const char *shape,
                                 const char *file_shape);

/* Starts m from the tensors of path's /params that match a layer and
 * tensor of m by name and by shape (Keras' load_weights(by_name=True,
 * skip_mismatch=True)): the others keep their initial values, so a
 * config may add heads or change a layer's width; optimizer state is left
 * fresh. rename: n_rename entries "OLD=NEW": the file's layer OLD is read
 * for the layer NEW. Reports every tensor, and the file's unused entries
 * (report may be NULL). Errors: the file unreadable, a tensor not finite,
 * a rename naming a layer the file or the network lacks, nothing matched. */
MIMO_API int mimo_checkpoint_init_by_name(const char *path, mimo_model *m,
                                          const char *const *rename, int n_rename,
                                          mimo_init_report report, void *user);

/* The /params/<layer>[/<tensor>] entries of path that no tensor of g
 * reads (what --init would ignore), comma-separated into names (len
 * bytes, cut short when long); returns how many (0 also when the file
 * cannot be read: mimo_checkpoint_init_params reports that). */
MIMO_API int mimo_checkpoint_unused_params(const char *path, const mimo_graph *g,
                                           char *names, size_t len);

/* Where the checkpoint at path stands: the next step to run is `step` of
 * epoch `epoch` (0-based), after global_step steps. */
MIMO_API int mimo_checkpoint_position(const char *path, int64_t *epoch,
                                      int64_t *step, int64_t *global_step);

/* Whether path is a readable mimo checkpoint; *global_step receives its
 * position (for choosing the newest). Quiet: no error message kept. */
MIMO_API int mimo_checkpoint_probe(const char *path, int64_t *global_step);
/* The same, and its lineage (see mimo_ckpt_state) into lineage (len
 * bytes; "" when it has none). */
MIMO_API int mimo_checkpoint_lineage(const char *path, int64_t *global_step,
                                     char *lineage, size_t len);

#ifdef __cplusplus
}
#endif
#endif
