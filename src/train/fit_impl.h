/* fit_impl.h — what `mimo train`'s loop (loop.c) shares with mimo_fit
 * (fit.c) besides the public API: the rows validation_split holds out. */
#ifndef MIMO_TRAIN_FIT_IMPL_H
#define MIMO_TRAIN_FIT_IMPL_H

#include <stddef.h>

/* validation_split over n rows (Keras): *n_val = n * split rounded down,
 * the LAST rows, taken before shuffling; training keeps the first
 * n - *n_val. split <= 0: none held out. A split that leaves no
 * validation or no training rows is MIMO_EINVAL, the message naming where
 * (the config file; NULL for none). */
int mimo_validation_rows(double split, size_t n, const char *where, size_t *n_val);

#endif
