/* comm.c — mimo's communicators and the calls every part uses on them:
 * checked-call failures (mpicall.h), a duplicate with MPI_ERRORS_RETURN
 * for mimo's own use, the ranks of this node, error agreement. */
#include <stdio.h>
#include <string.h>

#include "comm/mpicall.h"
#include "comm/stall.h"
#include "comm/dist.h"
#include "mimo/error.h"

int mimo_mpi_fail(const char *call, int err)
{
    char msg[MPI_MAX_ERROR_STRING], fn[64];
    int len = 0;
    size_t n = strcspn(call, "(");
    snprintf(fn, sizeof fn, "%.*s", (int)(n < sizeof fn ? n : sizeof fn - 1), call);
    if (MPI_Error_string(err, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "error %d", err);
    return mimo_error(MIMO_EMPI, "%s failed: %s", fn, msg);
}

int mimo_comm_dup(MPI_Comm comm, MPI_Comm *out)
{
    *out = MPI_COMM_NULL;
    if (comm == MPI_COMM_NULL)
        return 0;
    MIMO_MPI(MPI_Comm_dup(comm, out));
    MIMO_MPI(MPI_Comm_set_errhandler(*out, MPI_ERRORS_RETURN));
    return 0;
}

void mimo_comm_free(MPI_Comm *c)
{
    if (*c != MPI_COMM_NULL)
        MPI_Comm_free(c); /* nothing to report at the end */
    *c = MPI_COMM_NULL;
}

int mimo_comm_node(MPI_Comm comm, int *local, int *local_rank)
{
    MPI_Comm node;
    int rank;
    *local = 1, *local_rank = 0;
    if (comm == MPI_COMM_NULL)
        return 0;
    MIMO_MPI(MPI_Comm_rank(comm, &rank));
    MIMO_MPI(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL,
                                 &node));
    int rc = MPI_Comm_size(node, local), rc2 = MPI_Comm_rank(node, local_rank);
    MPI_Comm_free(&node);
    MIMO_MPI(rc);
    MIMO_MPI(rc2);
    return 0;
}

int mimo_agree(MPI_Comm comm, int rc)
{
    int rank = 0, size = 1, first, err;
    if ((err = MPI_Comm_rank(comm, &rank)) != MPI_SUCCESS ||
        (err = MPI_Comm_size(comm, &size)) != MPI_SUCCESS)
        return mimo_mpi_fail("MPI_Comm_size", err);
    int mine = rc ? rank : size;
    mimo_stall_enter(MIMO_STALL_AGREE);
    err = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    mimo_stall_leave();
    if (err != MPI_SUCCESS)
        return rc ? rc : mimo_mpi_fail("MPI_Allreduce", err);
    if (first == size)
        return 0;
    mimo_error_set_agreed();
    return first == rank ? rc : MIMO_EPEER;
}
