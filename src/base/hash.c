/* hash.c — SipHash-2-4 (Aumasson & Bernstein, "SipHash: a fast short-input
 * PRF", 2012), written from the paper's reference: two compression rounds
 * per 8-byte word, four finalization rounds, 64-bit output. Keyed, so a
 * seed gives another hash; integer-only, so every platform agrees. */
#include "base/hash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

/* One SipRound on the state v[0..3]. */
static void sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ROTL(v[1], 13);
    v[1] ^= v[0];
    v[0] = ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = ROTL(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = ROTL(v[1], 17);
    v[1] ^= v[2];
    v[2] = ROTL(v[2], 32);
}

/* n (< 8) bytes little-endian, the rest zero. */
static uint64_t load_le(const unsigned char *p, size_t n)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x |= (uint64_t)p[i] << (8 * i);
    return x;
}

uint64_t mimo_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                     k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
    size_t full = len - len % 8;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = load_le(p + i, 8);
        v[3] ^= m;
        sipround(v);
        sipround(v);
        v[0] ^= m;
    }
    /* the last word: the remaining bytes, the length's low byte on top */
    uint64_t b = (uint64_t)len << 56 | load_le(p + full, len % 8);
    v[3] ^= b;
    sipround(v);
    sipround(v);
    v[0] ^= b;
    v[2] ^= 0xff;
    for (int r = 0; r < 4; r++)
        sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

uint64_t mimo_siphash_decimal(uint64_t salt, int64_t v)
{
    char buf[24];
    int at = (int)sizeof buf;
    /* the digits of -|v| (never overflows, unlike |INT64_MIN|) */
    int64_t n = v > 0 ? -v : v;
    do {
        buf[--at] = (char)('0' - n % 10); /* C99: n % 10 in (-10, 0] */
        n /= 10;
    } while (n);
    if (v < 0)
        buf[--at] = '-';
    return mimo_siphash24(salt, salt, buf + at, sizeof buf - (size_t)at);
}
