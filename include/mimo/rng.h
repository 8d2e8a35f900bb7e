/* rng.h — the project's own seedable PRNG (xoshiro256** seeded by
 * splitmix64). The same seed gives the same stream on every platform, so
 * initial weights and shuffles are reproducible. */
#ifndef MIMO_RNG_H
#define MIMO_RNG_H

#include "mimo/api.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t s[4];
} mimo_rng;

/* Seeds the generator from one 64-bit value (any value, 0 included). */
MIMO_API void mimo_rng_seed(mimo_rng *r, uint64_t seed);
/* Next 64 random bits. */
MIMO_API uint64_t mimo_rng_next(mimo_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
MIMO_API double mimo_rng_uniform(mimo_rng *r);
/* Uniform integer in [0, n), unbiased; n > 0. */
MIMO_API uint64_t mimo_rng_below(mimo_rng *r, uint64_t n);
/* Standard normal (Box-Muller, one value per call). */
MIMO_API double mimo_rng_normal(mimo_rng *r);
/* Fills perm[0..n) with a uniform random permutation of 0..n-1. */
MIMO_API void mimo_rng_permutation(mimo_rng *r, uint64_t *perm, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif
