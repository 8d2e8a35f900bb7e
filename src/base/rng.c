/* rng.c — xoshiro256** (Blackman & Vigna) seeded through splitmix64.
 * Integer-only state updates: identical streams on every platform. */
#include "mimo/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void mimo_rng_seed(mimo_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

uint64_t mimo_rng_next(mimo_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double mimo_rng_uniform(mimo_rng *r)
{
    return (double)(mimo_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t mimo_rng_below(mimo_rng *r, uint64_t n)
{
    /* Reject the top partial range so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = mimo_rng_next(r);
    while (x >= limit);
    return x % n;
}

double mimo_rng_normal(mimo_rng *r)
{
    double u1 = 1.0 - mimo_rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = mimo_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void mimo_rng_permutation(mimo_rng *r, uint64_t *perm, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        perm[i] = i;
    for (uint64_t i = n; i > 1; i--) {
        uint64_t j = mimo_rng_below(r, i);
        uint64_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
