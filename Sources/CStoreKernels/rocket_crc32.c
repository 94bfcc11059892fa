// RocketMQ's body checksum (zlib's CRC-32) with VPCLMULQDQ folding over 64-byte lanes where the CPU has
// AVX-512 and VPCLMULQDQ; libdeflate (PCLMULQDQ over 16-byte lanes) below 256 bytes (faster there) and on
// other CPUs.
//
// Folding: a 128-bit lane [lo, hi] of bit-reflected data moves D bits forward as
// clmul(lo, K(D + 32)) ^ clmul(hi, K(D - 32)), where K(n) = reflect32(x^n mod P) << 1 (P = 0x104C11DB7).
// What is left folds into one 128-bit value V such that the CRC of the input equals the CRC (from a zero
// register) of V followed by the unfolded tail, which libdeflate finishes.
#include "rocket_crc32.h"
#include <cpuid.h>
#include <immintrin.h>
#include <libdeflate.h>
#include <string.h>

// K(n) for the fold distances used: 2048 bits (four 64-byte registers), 512, 384, 256 and 128 bits.
#define K2080 0x11542778aULL
#define K2016 0x1322d1430ULL
#define K544 0x154442bd4ULL
#define K480 0x1c6e41596ULL
#define K416 0x03db1ecdcULL
#define K352 0x174359406ULL
#define K288 0x0f1da05aaULL
#define K224 0x15a546366ULL
#define K160 0x1751997d0ULL
#define K96 0x0ccaa009eULL

#define TARGET __attribute__((target("avx512f,avx512vl,avx512bw,vpclmulqdq,pclmul")))

TARGET static inline __m512i fold(__m512i x, __m512i k, __m512i next) {
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11),
                                     next, 0x96);
}

TARGET static uint32_t crc32_vpclmul(uint32_t crc, const uint8_t *p, size_t len) {
    const __m512i k2048 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)K2016, (long long)K2080));
    const __m512i k512 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)K480, (long long)K544));
    __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)~crc)));
    if (len >= 256) {
        __m512i x1 = _mm512_loadu_si512(p + 64), x2 = _mm512_loadu_si512(p + 128), x3 = _mm512_loadu_si512(p + 192);
        p += 256;
        len -= 256;
        for (; len >= 256; p += 256, len -= 256) {
            x0 = fold(x0, k2048, _mm512_loadu_si512(p));
            x1 = fold(x1, k2048, _mm512_loadu_si512(p + 64));
            x2 = fold(x2, k2048, _mm512_loadu_si512(p + 128));
            x3 = fold(x3, k2048, _mm512_loadu_si512(p + 192));
        }
        x0 = fold(fold(fold(x0, k512, x1), k512, x2), k512, x3);
    } else {
        p += 64;
        len -= 64;
    }
    for (; len >= 64; p += 64, len -= 64) x0 = fold(x0, k512, _mm512_loadu_si512(p));
    // 512 -> 128 bits: lanes 0, 1, 2 move forward by 384, 256, 128 bits onto lane 3.
    const __m512i kr = _mm512_set_epi64(0, 0, (long long)K96, (long long)K160, (long long)K224, (long long)K288,
                                        (long long)K352, (long long)K416);
    const __m512i y = _mm512_xor_si512(_mm512_clmulepi64_epi128(x0, kr, 0x00), _mm512_clmulepi64_epi128(x0, kr, 0x11));
    __m128i v = _mm_xor_si128(_mm512_extracti32x4_epi32(y, 0), _mm512_extracti32x4_epi32(y, 1));
    v = _mm_ternarylogic_epi64(v, _mm512_extracti32x4_epi32(y, 2), _mm512_extracti32x4_epi32(x0, 3), 0x96);
    uint8_t rest[16 + 64];
    _mm_storeu_si128((__m128i *)rest, v);
    memcpy(rest + 16, p, len);
    return libdeflate_crc32(0xFFFFFFFFu, rest, 16 + len);
}

static int has_vpclmul512(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_PCLMUL)) return 0;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6) != 0xE6) return 0;  // the OS saves SSE, AVX and the three AVX-512 states
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_AVX512F) && (b & bit_AVX512BW) && (b & bit_AVX512VL) && (c & bit_VPCLMULQDQ);
}

static int vpclmul = -1;

uint32_t rocket_crc32_update(uint32_t crc, const void *bytes, size_t count) {
    int use = __atomic_load_n(&vpclmul, __ATOMIC_RELAXED);
    if (use < 0) {
        use = has_vpclmul512();
        __atomic_store_n(&vpclmul, use, __ATOMIC_RELAXED);
    }
    if (use && count >= 256) return crc32_vpclmul(crc, (const uint8_t *)bytes, count);
    return libdeflate_crc32(crc, bytes, count);
}

int rocket_crc32_is_vectorized(void) {
    if (__atomic_load_n(&vpclmul, __ATOMIC_RELAXED) < 0) rocket_crc32_update(0, "", 0);
    return __atomic_load_n(&vpclmul, __ATOMIC_RELAXED);
}
