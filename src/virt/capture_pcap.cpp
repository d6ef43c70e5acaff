#include "virt/capture_pcap.hpp"

#include <cerrno>
#include <fstream>
#include <unordered_map>
#include <vector>

#include "util/files.hpp"

namespace qmt::virt {

namespace {

// Link-layer header types from https://www.tcpdump.org/linktypes.html.
constexpr std::uint32_t k_link_ethernet = 1;
constexpr std::uint32_t k_link_raw = 101;
constexpr std::uint32_t k_link_linux_sll = 113;
constexpr std::uint32_t k_link_ipv4 = 228;
constexpr std::uint32_t k_link_ipv6 = 229;
constexpr std::uint32_t k_link_linux_sll2 = 276;

constexpr std::uint16_t k_ethertype_ipv4 = 0x0800;
constexpr std::uint16_t k_ethertype_ipv6 = 0x86dd;
constexpr std::uint16_t k_ethertype_vlan = 0x8100;
constexpr std::uint16_t k_ethertype_qinq = 0x88a8;
constexpr std::uint8_t k_protocol_tcp = 6;
constexpr std::uint8_t k_tcp_syn = 0x02;

// Bytes kept from the start of each stream to classify it: enough for a TLS
// record header (5) and the QEMU magic (4).
constexpr std::size_t k_head_size = 8;
// A pcap record larger than this is treated as a corrupt file.
constexpr std::uint32_t k_max_record = 16 * 1024 * 1024;

std::uint16_t big16(const unsigned char* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

std::uint32_t big32(const unsigned char* p) {
  return (static_cast<std::uint32_t>(p[0]) << 24) |
         (static_cast<std::uint32_t>(p[1]) << 16) |
         (static_cast<std::uint32_t>(p[2]) << 8) | p[3];
}

std::uint32_t file32(const unsigned char* p, bool swapped) {
  std::uint32_t value = static_cast<std::uint32_t>(p[0]) |
                        (static_cast<std::uint32_t>(p[1]) << 8) |
                        (static_cast<std::uint32_t>(p[2]) << 16) |
                        (static_cast<std::uint32_t>(p[3]) << 24);
  if (swapped) value = big32(p);
  return value;
}

// One direction of one TCP connection.
struct Stream {
  bool synced = false;      // next_seq is known
  bool from_start = false;  // the capture contains this stream's SYN
  bool gap = false;         // bytes are missing from the capture
  std::uint32_t next_seq = 0;
  std::uint64_t offset = 0;  // payload bytes followed so far
  std::string head;          // first bytes, when from_start
  std::string tail;          // last bytes, to match across segments
};

// A TCP segment found in one packet.
struct Segment {
  std::string key;  // addresses and ports, one stream direction
  std::uint32_t seq = 0;
  bool syn = false;
  const unsigned char* payload = nullptr;
  std::size_t payload_size = 0;      // captured payload bytes
  std::size_t payload_declared = 0;  // payload bytes on the wire
};

class Analyzer {
 public:
  explicit Analyzer(std::string pattern) : m_pattern(std::move(pattern)) {}

  void add(const Segment& segment) {
    Stream& stream = m_streams[segment.key];
    if (segment.syn && stream.offset == 0) {
      stream.synced = true;
      stream.from_start = true;
      stream.next_seq = segment.seq + 1;
      stream.head.clear();
      stream.tail.clear();
    }
    if (segment.payload_declared == 0) return;
    if (!stream.synced) {
      stream.synced = true;
      stream.next_seq = segment.seq;
    }

    const unsigned char* data = segment.payload;
    std::size_t size = segment.payload_size;
    std::size_t declared = segment.payload_declared;
    const auto ahead = static_cast<std::int32_t>(segment.seq - stream.next_seq);
    if (ahead < 0) {
      // A retransmission or overlap: skip the bytes already followed.
      const auto seen =
          static_cast<std::size_t>(-static_cast<std::int64_t>(ahead));
      if (seen >= declared) return;
      declared -= seen;
      const std::size_t skip = std::min(seen, size);
      data += skip;
      size -= skip;
    } else if (ahead > 0) {
      mark_gap(stream);
      stream.next_seq = segment.seq;
    }
    follow(stream, data, size);
    if (size < declared) mark_gap(stream);
    stream.next_seq += static_cast<std::uint32_t>(declared);
  }

  WireFindings finish(WireFindings findings) const {
    for (const auto& item : m_streams) {
      const Stream& stream = item.second;
      if (stream.offset == 0) continue;
      ++findings.streams;
      if (stream.gap) ++findings.streams_with_gaps;
      if (!stream.from_start) continue;
      ++findings.streams_from_start;
      const auto* head =
          reinterpret_cast<const unsigned char*>(stream.head.data());
      if (stream.head.size() >= 3 && head[0] == 0x16 && head[1] == 0x03 &&
          head[2] <= 0x04) {
        ++findings.tls_streams;
      }
      if (stream.head.rfind(k_qemu_migration_magic, 0) == 0) {
        ++findings.magic_streams;
      }
    }
    findings.pattern_count = m_pattern_count;
    findings.payload_bytes = m_payload_bytes;
    return findings;
  }

 private:
  void mark_gap(Stream& stream) {
    stream.gap = true;
    stream.tail.clear();
  }

  void follow(Stream& stream, const unsigned char* data, std::size_t size) {
    if (size == 0) return;
    m_payload_bytes += size;
    if (stream.from_start && !stream.gap && stream.offset < k_head_size) {
      const std::size_t take =
          std::min<std::size_t>(k_head_size - stream.offset, size);
      stream.head.append(reinterpret_cast<const char*>(data), take);
    }
    stream.offset += size;
    if (m_pattern.empty()) return;

    // The kept tail is shorter than the pattern, so every match found here
    // ends in the new bytes and none is counted twice.
    std::string window = stream.tail;
    window.append(reinterpret_cast<const char*>(data), size);
    for (std::size_t at = window.find(m_pattern); at != std::string::npos;
         at = window.find(m_pattern, at + m_pattern.size())) {
      ++m_pattern_count;
    }
    const std::size_t keep = m_pattern.size() - 1;
    stream.tail =
        window.size() > keep ? window.substr(window.size() - keep) : window;
  }

  std::string m_pattern;
  std::unordered_map<std::string, Stream> m_streams;
  std::uint64_t m_pattern_count = 0;
  std::uint64_t m_payload_bytes = 0;
};

// Finds the IP header of a packet; returns nullptr for other protocols.
const unsigned char* ip_header(std::uint32_t link_type,
                               const unsigned char* packet, std::size_t size,
                               std::size_t& remaining) {
  std::size_t offset = 0;
  std::uint16_t ethertype = 0;
  switch (link_type) {
    case k_link_ethernet:
      if (size < 14) return nullptr;
      ethertype = big16(packet + 12);
      offset = 14;
      while ((ethertype == k_ethertype_vlan || ethertype == k_ethertype_qinq) &&
             size >= offset + 4) {
        ethertype = big16(packet + offset + 2);
        offset += 4;
      }
      break;
    case k_link_linux_sll:
      if (size < 16) return nullptr;
      ethertype = big16(packet + 14);
      offset = 16;
      break;
    case k_link_linux_sll2:
      if (size < 20) return nullptr;
      ethertype = big16(packet);
      offset = 20;
      break;
    case k_link_raw:
    case k_link_ipv4:
    case k_link_ipv6:
      if (size < 1) return nullptr;
      ethertype = (packet[0] >> 4) == 6 ? k_ethertype_ipv6 : k_ethertype_ipv4;
      break;
    default:
      return nullptr;
  }
  if (ethertype != k_ethertype_ipv4 && ethertype != k_ethertype_ipv6) {
    return nullptr;
  }
  if (offset >= size) return nullptr;
  remaining = size - offset;
  return packet + offset;
}

// Parses the IP and TCP headers; false for anything but a TCP segment.
bool parse_segment(const unsigned char* ip, std::size_t size,
                   Segment& segment) {
  if (size < 1) return false;
  const unsigned version = ip[0] >> 4;
  std::size_t header_size = 0;
  std::size_t ip_payload_declared = 0;
  std::string addresses;
  if (version == 4) {
    if (size < 20) return false;
    header_size = (ip[0] & 0x0f) * 4u;
    const std::size_t total = big16(ip + 2);
    const std::uint16_t fragment = big16(ip + 6);
    // Fragments other than a whole datagram cannot be followed.
    if ((fragment & 0x3fff) != 0) return false;
    if (ip[9] != k_protocol_tcp || header_size < 20 || total < header_size ||
        size < header_size) {
      return false;
    }
    ip_payload_declared = total - header_size;
    addresses.assign(reinterpret_cast<const char*>(ip + 12), 8);
  } else if (version == 6) {
    if (size < 40 || ip[6] != k_protocol_tcp) return false;
    header_size = 40;
    ip_payload_declared = big16(ip + 4);
    addresses.assign(reinterpret_cast<const char*>(ip + 8), 32);
  } else {
    return false;
  }

  const unsigned char* tcp = ip + header_size;
  const std::size_t tcp_captured = size - header_size;
  if (tcp_captured < 20 || ip_payload_declared < 20) return false;
  const std::size_t tcp_header = (tcp[12] >> 4) * 4u;
  if (tcp_header < 20 || tcp_header > ip_payload_declared ||
      tcp_header > tcp_captured) {
    return false;
  }
  segment.key = addresses;
  segment.key.append(reinterpret_cast<const char*>(tcp), 4);  // both ports
  segment.seq = big32(tcp + 4);
  segment.syn = (tcp[13] & k_tcp_syn) != 0;
  segment.payload = tcp + tcp_header;
  segment.payload_declared = ip_payload_declared - tcp_header;
  // Ethernet padding may follow a short segment: trust the IP length.
  segment.payload_size =
      std::min(tcp_captured - tcp_header, segment.payload_declared);
  return true;
}

}  // namespace

const char* to_string(WireVerdict verdict) {
  switch (verdict) {
    case WireVerdict::encrypted:
      return "encrypted";
    case WireVerdict::plaintext:
      return "plaintext";
    case WireVerdict::inconclusive:
      return "inconclusive";
  }
  return "inconclusive";
}

util::Result<WireFindings> analyze_pcap(const std::string& path,
                                        const std::string& pattern) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return util::Error{"Failed to open the capture " + path + ": " +
                       util::errno_text(errno)};
  }
  unsigned char header[24];
  if (!file.read(reinterpret_cast<char*>(header), sizeof header)) {
    return util::Error{"Capture " + path +
                       " is not a pcap file: shorter than the 24-byte header"};
  }
  const std::uint32_t magic = file32(header, false);
  bool swapped = false;
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
    swapped = false;
  } else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
    swapped = true;
  } else if (magic == 0x0a0d0d0a) {
    return util::Error{"Capture " + path +
                       " is in pcapng format; write it with tshark -F pcap"};
  } else {
    return util::Error{"Capture " + path +
                       " is not a pcap file: unknown magic number"};
  }
  const std::uint32_t link_type = file32(header + 20, swapped) & 0x0fffffff;

  Analyzer analyzer(pattern);
  WireFindings findings;
  std::vector<unsigned char> packet;
  unsigned char record[16];
  while (file.read(reinterpret_cast<char*>(record), sizeof record)) {
    const std::uint32_t captured = file32(record + 8, swapped);
    if (captured > k_max_record) {
      return util::Error{"Capture " + path + " has a packet record of " +
                         std::to_string(captured) +
                         " bytes, which is not plausible; the file is corrupt"};
    }
    packet.resize(captured);
    if (!file.read(reinterpret_cast<char*>(packet.data()), captured)) {
      break;  // a capture stopped mid-write ends with a partial record
    }
    findings.bytes_captured += captured;
    std::size_t ip_size = 0;
    const unsigned char* ip =
        ip_header(link_type, packet.data(), packet.size(), ip_size);
    if (ip == nullptr) continue;
    Segment segment;
    if (!parse_segment(ip, ip_size, segment)) continue;
    ++findings.packets;
    analyzer.add(segment);
  }
  return analyzer.finish(findings);
}

WireVerdict judge_wire(const WireFindings& findings) {
  if (findings.magic_streams > 0 || findings.pattern_count > 0) {
    return WireVerdict::plaintext;
  }
  if (findings.tls_streams > 0 &&
      findings.tls_streams == findings.streams_from_start) {
    return WireVerdict::encrypted;
  }
  return WireVerdict::inconclusive;
}

}  // namespace qmt::virt
