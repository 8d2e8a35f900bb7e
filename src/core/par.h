/* par.h — loops split over the OpenMP threads only when they are long
 * enough to pay and there are threads to split them over.
 *
 * `#pragma omp parallel for if (cond)` enters libgomp even when cond is
 * false or one thread is all there is, and libgomp allocates and frees a
 * team for every region entered (two mallocs: on the tiny benchmark
 * network, a dozen regions a step, a tenth of its time, and a training
 * step must allocate nothing: tests/test_alloc.c). MIMO_PAR_FOR branches
 * before any region:
 *
 *     MIMO_PAR_FOR((size_t)b * w >= MIMO_PAR_MIN, int r = 0, r < b, r++, {
 *         ... one iteration ...
 *     });
 *
 * runs the loop `for (init; test; step) body` with `omp parallel for
 * schedule(static)` when cond holds and OpenMP has more than one thread,
 * else as a plain loop (the body is compiled once for each). */
#ifndef MIMO_CORE_PAR_H
#define MIMO_CORE_PAR_H

#ifdef _OPENMP
#include <omp.h>
#endif

/* Threads a parallel region would have (1 without OpenMP). */
static inline int mimo_par_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

#define MIMO_PAR_FOR(cond, init, test, step, ...)                             \
    do {                                                                      \
        if ((cond) && mimo_par_threads() > 1) {                               \
            _Pragma("omp parallel for schedule(static)")                      \
            for (init; test; step) __VA_ARGS__                                \
        } else {                                                              \
            for (init; test; step) __VA_ARGS__                                \
        }                                                                     \
    } while (0)

#endif
