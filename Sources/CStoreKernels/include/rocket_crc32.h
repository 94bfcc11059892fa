#pragma once
#include <stddef.h>
#include <stdint.h>

/// zlib's CRC-32 of `count` bytes continuing from `crc` (0 to start), as libdeflate_crc32 computes it.
uint32_t rocket_crc32_update(uint32_t crc, const void *bytes, size_t count);
/// 1 when the 64-byte-lane (AVX-512 VPCLMULQDQ) path is in use on this CPU.
int rocket_crc32_is_vectorized(void);
