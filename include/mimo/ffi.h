/* ffi.h — entry points with plain C types for other languages' bindings
 * (python/mimo/ over ctypes): what they need beyond the C API, which
 * passes structs by value and an MPI communicator. */
#ifndef MIMO_FFI_H
#define MIMO_FFI_H

#include "mimo/api.h"

#include <stddef.h>

#include "mimo/model.h"
#include "mimo/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* sizeof(mimo_spec): a binding allocates the spec mimo_config_load and
 * mimo_load fill. */
MIMO_API size_t mimo_spec_sizeof(void);

/* The model of a checkpoint (or a run directory's newest), its
 * parameters loaded, for predict, evaluate and export (batches of up to
 * 256 rows at a time; the training-only settings — accumulate, gradient
 * diagnostics, task balancing — off): spec receives the checkpoint's
 * config and must outlive *out. One process; no MPI. Eval, predict and
 * the exports load through it. */
MIMO_API int mimo_load(const char *checkpoint, mimo_spec *spec, mimo_model **out);

/* The name of head h of g (its output and target dataset's name). */
MIMO_API const char *mimo_graph_head_name(const mimo_graph *g, int h);

/* `mimo train CONFIG --out OUT --set K=V...` as a call: under mpirun (or
 * srun) MPI is started here and every rank of MPI_COMM_WORLD trains its
 * slice, as `mimo train` does; quiet 0 prints each epoch's line on rank
 * 0. mimo_mpi_end() ends MPI when a call started it (at the binding's
 * exit). */
MIMO_API int mimo_train_config(const char *config, const char *out,
                               const char *const *sets, int n_sets, int quiet);
MIMO_API void mimo_mpi_end(void);

#ifdef __cplusplus
}
#endif
#endif
