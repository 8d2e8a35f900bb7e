# siphash.py — SipHash-2-4 (Aumasson & Bernstein 2012) in plain Python,
# written independently of src/base/hash.c: the reference the hashed-id
# tests compare mimo's with. siphash24(k0, k1, data) -> 64-bit int.
M = (1 << 64) - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M


def siphash24(k0, k1, data):
    v = [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d,
         k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573]

    def rnd():
        v[0] = (v[0] + v[1]) & M; v[1] = _rotl(v[1], 13) ^ v[0]; v[0] = _rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & M; v[3] = _rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & M; v[3] = _rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & M; v[1] = _rotl(v[1], 17) ^ v[2]; v[2] = _rotl(v[2], 32)

    n = len(data)
    full = n - n % 8
    for i in range(0, full, 8):
        m = int.from_bytes(data[i:i + 8], 'little')
        v[3] ^= m; rnd(); rnd(); v[0] ^= m
    b = ((n & 0xff) << 56) | int.from_bytes(data[full:] + b'\0' * (8 - n % 8), 'little')
    v[3] ^= b; rnd(); rnd(); v[0] ^= b
    v[2] ^= 0xff
    for _ in range(4):
        rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


# the reference implementation's vector for key 00..0f, message 00..0e
assert siphash24(0x0706050403020100, 0x0f0e0d0c0b0a0908, bytes(range(15))) == 0xa129ca6149be45e5
