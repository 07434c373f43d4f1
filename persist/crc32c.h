/* crc32c.h - CRC-32C (Castagnoli, polynomial 0x1EDC6F41 reflected 0x82F63B78) checksums.
 *
 * Contract: crc32c_extend(crc, data, len) continues a checksum: crc is the finished CRC of the
 * bytes before `data` (0 for none) and the result is the finished CRC of both, so
 * crc32c_extend(crc32c_extend(0, a, n), b, m) == CRC of a followed by b. The value for the
 * ASCII string "123456789" is 0xE3069283. On x86-64 CPUs with SSE4.2 the CRC32 instruction is
 * used (chosen once, at first call); everywhere else a table-driven implementation. Both give
 * identical results; crc32c_extend_software is exported so tests can compare them.
 * Pure functions, thread-safe, libc only. Why CRC32C and not XXH3: no extra dependency, a
 * hardware instruction on every server we target, and it is the checksum ext4, iSCSI and
 * LevelDB/RocksDB logs use for the same job (detecting torn and flipped bytes).
 */
#ifndef ALLOT_PERSIST_CRC32C_H
#define ALLOT_PERSIST_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t crc32c_extend(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_extend_software(uint32_t crc, const void *data, size_t len);

/* True when crc32c_extend uses the SSE4.2 instruction on this machine. */
bool crc32c_hardware_available(void);

#endif
