/* dataset_impl.h — what the trainer tells the dataset layer besides the
 * public API: the flag a signal sets, so that a long scan of a file
 * (NaN/Inf, labels, ranges: minutes on a huge file) stops within a chunk
 * of rows when a stop is asked for. */
#ifndef MIMO_IO_DATASET_IMPL_H
#define MIMO_IO_DATASET_IMPL_H

#include <signal.h>

/* While *stop is nonzero, mimo_data_open's scans end with MIMO_EINVAL
 * ("stopped while checking"); NULL: never. Process-wide, like a signal
 * handler's flag; set before opening, cleared after. */
void mimo_data_stop_flag(volatile sig_atomic_t *stop);

#endif
