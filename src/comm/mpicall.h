/* mpicall.h — every MPI call of libmimo is checked (PETSc's PetscCallMPI):
 * MIMO_MPI(call) returns from the calling function with a mimo_error that
 * names the MPI function and gives MPI's own message. The communicators
 * and windows mimo uses have MPI_ERRORS_RETURN (mimo_comm_dup), so a
 * failure reaches these checks instead of aborting inside MPI. */
#ifndef MIMO_DIST_MPICALL_H
#define MIMO_DIST_MPICALL_H

#include <mpi.h>

/* MIMO_EMPI: "MPI_Allreduce failed: <MPI's message>" (call is the call's
 * text; its function name is used). */
int mimo_mpi_fail(const char *call, int err);

#define MIMO_MPI(call)                                                      \
    do {                                                                    \
        int mimo_err_ = (call);                                             \
        if (mimo_err_ != MPI_SUCCESS)                                       \
            return mimo_mpi_fail(#call, mimo_err_);                         \
    } while (0)

/* For functions that cannot return an error (hooks): keeps the first
 * failure in *rc (an int) and goes on. */
#define MIMO_MPI_KEEP(rc, call)                                             \
    do {                                                                    \
        int mimo_err_ = (call);                                             \
        if (mimo_err_ != MPI_SUCCESS && !*(rc))                             \
            *(rc) = mimo_mpi_fail(#call, mimo_err_);                        \
    } while (0)

#endif
