/* teardown.c — the lone-failure rule (teardown.h) and the release of a
 * job's data files, runtime and communicator by it. */
#include "train/teardown.h"

#include "io/dataset_impl.h"
#include "mimo/error.h"

int mimo_failed_alone(MPI_Comm comm, int rc)
{
    int size = 1;
    if (rc >= 0 || comm == MPI_COMM_NULL)
        return 0; /* success, a stop, or no MPI */
    if (MPI_Comm_size(comm, &size) != MPI_SUCCESS)
        size = 2; /* a broken communicator: no collective on it */
    return size > 1 && !mimo_error_agreed();
}

void mimo_release(const mimo_held *h, int alone)
{
    for (int i = 0; i < 2; i++)
        if (h->data[i])
            (alone ? mimo_data_abandon : mimo_data_close)(h->data[i]);
    if (h->dist)
        (alone ? mimo_dist_abandon : mimo_dist_free)(h->dist);
    if (h->comm && !alone)
        mimo_comm_free(h->comm);
}
