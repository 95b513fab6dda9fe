/* sha256.c: SHA-256 (FIPS 180-4) of a file, streamed in 64 KiB blocks with checked reads, so the
 * results file can record exactly which data files a run used. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_sha256.h"
#include "pt_util.h"

typedef struct {
    uint32_t h[8];        /* chaining state */
    uint8_t block[64];    /* (64) pending input bytes */
    size_t block_len;     /* bytes in block */
    uint64_t total_len;   /* message length in bytes */
} Sha256;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_init(Sha256 *s) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, h0, sizeof h0);
    s->block_len = 0;
    s->total_len = 0;
}

static void sha256_compress(uint32_t h[8], const uint8_t block[64]) {
    uint32_t w[64]; /* (64) message schedule */
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
               (uint32_t)block[4 * i + 2] << 8 | (uint32_t)block[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + S1 + ch + K[i] + w[i];
        uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        hh = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

static void sha256_update(Sha256 *s, const uint8_t *data, size_t n) {
    s->total_len += n;
    while (n > 0) {
        size_t take = 64 - s->block_len;
        if (take > n) take = n;
        memcpy(s->block + s->block_len, data, take);
        s->block_len += take;
        data += take;
        n -= take;
        if (s->block_len == 64) {
            sha256_compress(s->h, s->block);
            s->block_len = 0;
        }
    }
}

static void sha256_final(Sha256 *s, char hex[65]) {
    uint64_t bits = s->total_len * 8;
    uint8_t pad[72] = {0x80}; /* 0x80, zeros, then the 64-bit big-endian length */
    size_t pad_len = (s->block_len < 56) ? 56 - s->block_len : 120 - s->block_len;
    uint8_t len_be[8];
    for (int i = 0; i < 8; i++) len_be[i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t saved = s->total_len;
    sha256_update(s, pad, pad_len);
    sha256_update(s, len_be, 8);
    s->total_len = saved;
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) {
            uint8_t byte = (uint8_t)(s->h[i] >> (24 - 8 * j));
            hex[8 * i + 2 * j] = digits[byte >> 4];
            hex[8 * i + 2 * j + 1] = digits[byte & 15];
        }
    hex[64] = '\0';
}

int pt_sha256_file(const char *path, char hex[65], PtError *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return pt_error_set(err, "cannot open '%s' to compute its SHA-256: %s", path, strerror(errno));
    size_t buf_size = (size_t)1 << 16;
    uint8_t *buf = pt_malloc(buf_size); /* (65536) read buffer */
    Sha256 s;
    sha256_init(&s);
    size_t n;
    while ((n = fread(buf, 1, buf_size, f)) > 0) sha256_update(&s, buf, n);
    free(buf);
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        return pt_error_set(err, "cannot read '%s' to compute its SHA-256: %s", path, strerror(e));
    }
    fclose(f);
    sha256_final(&s, hex);
    return 0;
}
