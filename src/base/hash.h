/* hash.h — the stable keyed hash mimo stores data by: SipHash-2-4
 * (Aumasson & Bernstein, 2012), 64-bit output. Stable means the same
 * bytes and key give the same value on every machine and in every
 * version of mimo: imported files and checkpoints keep hashed ids. */
#ifndef MIMO_HASH_H
#define MIMO_HASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-2-4 of len bytes at data under the 128-bit key (k0, k1): the
 * key's bytes are k0 then k1, each little-endian, as in the reference
 * implementation (whose test vectors tests/test_hash.c checks). */
uint64_t mimo_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len);

/* The hash of integer v's canonical decimal text ("-42", "0", "123": a
 * '-' for negatives, no leading zeros or '+') under the key (salt, salt):
 * what an imported `hashed` column of seed salt stores for a cell holding
 * that text (before its mod num_bins), so the hashing layer and the
 * import put the same id in the same bin. */
uint64_t mimo_siphash_decimal(uint64_t salt, int64_t v);

#endif
