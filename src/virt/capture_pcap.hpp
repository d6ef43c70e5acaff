#pragma once

#include <cstdint>
#include <string>

#include "util/result.hpp"

namespace qmt::virt {

// QEMU's migration stream magic, the first four bytes of a plaintext
// migration stream ("QEVM", QEMU_VM_FILE_MAGIC).
inline constexpr const char* k_qemu_migration_magic = "QEVM";

// Findings in a capture of migration traffic. A "stream" is one direction of
// one TCP connection. Its start is known only when the capture contains its
// SYN.
struct WireFindings {
  std::uint64_t packets = 0;         // TCP packets read
  std::uint64_t bytes_captured = 0;  // captured bytes of all packets
  std::uint64_t payload_bytes = 0;   // TCP payload bytes analysed
  std::uint64_t streams = 0;         // streams that carried payload
  // Streams whose capture starts at the SYN, so their first bytes are known.
  std::uint64_t streams_from_start = 0;
  // Streams that start with a TLS handshake record (0x16 0x03 0x00..0x04).
  std::uint64_t tls_streams = 0;
  std::uint64_t magic_streams = 0;  // streams that start with "QEVM"
  std::uint64_t pattern_count = 0;  // occurrences of the pattern in payload
  // Streams with bytes missing from the capture (lost or not captured).
  std::uint64_t streams_with_gaps = 0;
};

// Verdict on a capture's findings.
enum class WireVerdict {
  encrypted,     // TLS handshakes at the stream starts and no plaintext seen
  plaintext,     // the migration magic or the pattern was seen
  inconclusive,  // neither, for example an empty capture
};

// Returns "encrypted", "plaintext" or "inconclusive".
const char* to_string(WireVerdict verdict);

// Reads a classic pcap file (not pcapng) with Ethernet, Linux cooked (SLL or
// SLL2) or raw IP link types and follows each TCP stream in sequence order.
// Counts the streams that start with TLS or "QEVM", and the occurrences of
// `pattern`, also across segment boundaries. The file is read in one pass,
// with memory bounded by the number of streams. Errors name the file and
// the problem.
util::Result<WireFindings> analyze_pcap(const std::string& path,
                                        const std::string& pattern);

// Judges findings. Plaintext: a stream starts with the magic, or the
// pattern occurs. Encrypted: at least one stream starts with a TLS handshake,
// and so does every stream whose start was captured. Else inconclusive.
WireVerdict judge_wire(const WireFindings& findings);

}  // namespace qmt::virt
