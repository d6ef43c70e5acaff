#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "virt/capture.hpp"
#include "virt/capture_pcap.hpp"

namespace {

using qmt::virt::WireFindings;
using qmt::virt::WireVerdict;
using Bytes = std::vector<unsigned char>;

constexpr std::uint32_t k_ethernet = 1;
constexpr std::uint32_t k_linux_sll = 113;
constexpr std::uint32_t k_linux_sll2 = 276;
constexpr const char* k_pattern = "QMT-RAM-PATTERN!";

class TempDir {
 public:
  TempDir() {
    std::string name = ::testing::TempDir() + "qmt-capture-test-XXXXXX";
    std::vector<char> buffer(name.begin(), name.end());
    buffer.push_back('\0');
    EXPECT_NE(::mkdtemp(buffer.data()), nullptr);
    m_path = buffer.data();
  }
  ~TempDir() { std::filesystem::remove_all(m_path); }
  const std::string& path() const { return m_path; }

 private:
  std::string m_path;
};

void put16(Bytes& out, std::uint16_t value) {
  out.push_back(static_cast<unsigned char>(value >> 8));
  out.push_back(static_cast<unsigned char>(value));
}

void put32(Bytes& out, std::uint32_t value) {
  put16(out, static_cast<std::uint16_t>(value >> 16));
  put16(out, static_cast<std::uint16_t>(value));
}

void put32_le(Bytes& out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) {
    out.push_back(static_cast<unsigned char>(value >> (8 * i)));
  }
}

Bytes text_bytes(const std::string& text) {
  return Bytes(text.begin(), text.end());
}

// One TCP segment between two IPv4 endpoints.
struct Packet {
  std::uint8_t source = 11;  // last byte of 10.213.7.x
  std::uint8_t target = 12;
  std::uint16_t source_port = 40000;
  std::uint16_t target_port = 49152;
  std::uint32_t seq = 0;
  bool syn = false;
  Bytes payload;
};

Bytes ipv4_tcp(const Packet& packet) {
  Bytes tcp;
  put16(tcp, packet.source_port);
  put16(tcp, packet.target_port);
  put32(tcp, packet.seq);
  put32(tcp, 0);                            // ack
  tcp.push_back(5 << 4);                    // data offset
  tcp.push_back(packet.syn ? 0x02 : 0x18);  // SYN or PSH+ACK
  put16(tcp, 65535);                        // window
  put32(tcp, 0);                            // checksum, urgent
  tcp.insert(tcp.end(), packet.payload.begin(), packet.payload.end());

  Bytes ip;
  ip.push_back(0x45);
  ip.push_back(0);
  put16(ip, static_cast<std::uint16_t>(20 + tcp.size()));
  put32(ip, 0x40000000);  // id 0, don't fragment
  ip.push_back(64);
  ip.push_back(6);
  put16(ip, 0);
  for (std::uint8_t last : {packet.source, packet.target}) {
    ip.push_back(10);
    ip.push_back(213);
    ip.push_back(7);
    ip.push_back(last);
  }
  ip.insert(ip.end(), tcp.begin(), tcp.end());
  return ip;
}

Bytes frame(std::uint32_t link_type, const Bytes& ip) {
  Bytes out;
  if (link_type == k_ethernet) {
    out.assign(12, 0x02);
    put16(out, 0x0800);
  } else if (link_type == k_linux_sll) {
    out.assign(14, 0);
    put16(out, 0x0800);
  } else if (link_type == k_linux_sll2) {
    put16(out, 0x0800);
    out.resize(20, 0);
  }
  out.insert(out.end(), ip.begin(), ip.end());
  return out;
}

// Writes a little-endian microsecond pcap file.
std::string write_pcap(const std::string& folder, std::uint32_t link_type,
                       const std::vector<Packet>& packets,
                       std::size_t snaplen = 262144) {
  Bytes file;
  put32_le(file, 0xa1b2c3d4);
  file.push_back(2);
  file.push_back(0);
  file.push_back(4);
  file.push_back(0);
  put32_le(file, 0);
  put32_le(file, 0);
  put32_le(file, static_cast<std::uint32_t>(snaplen));
  put32_le(file, link_type);
  std::uint32_t second = 1;
  for (const auto& packet : packets) {
    Bytes data = frame(link_type, ipv4_tcp(packet));
    const std::size_t captured = std::min(data.size(), snaplen);
    put32_le(file, second++);
    put32_le(file, 0);
    put32_le(file, static_cast<std::uint32_t>(captured));
    put32_le(file, static_cast<std::uint32_t>(data.size()));
    file.insert(file.end(), data.begin(), data.begin() + captured);
  }
  const std::string path = folder + "/test.pcap";
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(file.data()),
            static_cast<std::streamsize>(file.size()));
  return path;
}

WireFindings analyze(const std::string& path,
                     const std::string& pattern = k_pattern) {
  auto findings = qmt::virt::analyze_pcap(path, pattern);
  EXPECT_TRUE(findings.ok()) << findings.error().message;
  return findings.ok() ? findings.value() : WireFindings{};
}

// A connection's packets: SYN, then the payload cut into `chunk` bytes.
std::vector<Packet> stream(const Bytes& payload, std::size_t chunk,
                           std::uint32_t isn = 1000, bool with_syn = true) {
  std::vector<Packet> packets;
  if (with_syn) {
    Packet syn;
    syn.seq = isn;
    syn.syn = true;
    packets.push_back(syn);
  }
  std::uint32_t seq = isn + 1;
  for (std::size_t at = 0; at < payload.size(); at += chunk) {
    Packet packet;
    packet.seq = seq;
    const std::size_t size = std::min(chunk, payload.size() - at);
    packet.payload.assign(payload.begin() + at, payload.begin() + at + size);
    seq += static_cast<std::uint32_t>(size);
    packets.push_back(packet);
  }
  return packets;
}

Bytes plaintext_stream(int copies) {
  Bytes payload = text_bytes("QEVM");
  put32(payload, 3);  // QEMU_VM_FILE_VERSION
  for (int i = 0; i < copies; ++i) {
    Bytes pattern = text_bytes(k_pattern);
    payload.insert(payload.end(), pattern.begin(), pattern.end());
  }
  return payload;
}

Bytes tls_stream() {
  // A TLS 1.3 ClientHello starts with a record of type 22, version 3.1.
  Bytes payload = {0x16, 0x03, 0x01, 0x00, 0x40};
  for (int i = 0; i < 300; ++i) {
    payload.push_back(static_cast<unsigned char>((i * 73 + 11) & 0xff));
  }
  return payload;
}

TEST(MigrateCapture, PlaintextOnEthernet) {
  TempDir folder;
  // 7-byte segments split the pattern across segment boundaries.
  const auto path =
      write_pcap(folder.path(), k_ethernet, stream(plaintext_stream(10), 7));
  WireFindings findings = analyze(path);
  EXPECT_EQ(findings.streams, 1u);
  EXPECT_EQ(findings.streams_from_start, 1u);
  EXPECT_EQ(findings.magic_streams, 1u);
  EXPECT_EQ(findings.tls_streams, 0u);
  EXPECT_EQ(findings.pattern_count, 10u);
  EXPECT_EQ(findings.payload_bytes, 8u + 160u);
  EXPECT_EQ(qmt::virt::judge_wire(findings), WireVerdict::plaintext);
}

TEST(MigrateCapture, TlsOnLinuxCooked) {
  for (std::uint32_t link : {k_linux_sll, k_linux_sll2}) {
    TempDir folder;
    auto packets = stream(tls_stream(), 100);
    // The server's reply, another stream that starts with a handshake.
    auto reply = stream(tls_stream(), 100, 5000);
    for (auto& packet : reply) {
      std::swap(packet.source, packet.target);
      std::swap(packet.source_port, packet.target_port);
    }
    packets.insert(packets.end(), reply.begin(), reply.end());
    const auto path = write_pcap(folder.path(), link, packets);
    WireFindings findings = analyze(path);
    EXPECT_EQ(findings.streams, 2u) << link;
    EXPECT_EQ(findings.tls_streams, 2u) << link;
    EXPECT_EQ(findings.magic_streams, 0u) << link;
    EXPECT_EQ(findings.pattern_count, 0u) << link;
    EXPECT_EQ(qmt::virt::judge_wire(findings), WireVerdict::encrypted) << link;
  }
}

TEST(MigrateCapture, RetransmissionCountedOnce) {
  TempDir folder;
  auto packets = stream(plaintext_stream(4), 16);
  packets.push_back(packets[2]);  // a retransmitted segment
  const auto path = write_pcap(folder.path(), k_ethernet, packets);
  WireFindings findings = analyze(path);
  EXPECT_EQ(findings.pattern_count, 4u);
  EXPECT_EQ(findings.streams_with_gaps, 0u);
}

TEST(MigrateCapture, MissedStartIsInconclusive) {
  TempDir folder;
  // No SYN: the capture started after the connection opened, so the first
  // bytes seen may be anywhere in the stream.
  auto packets = stream(tls_stream(), 50, 1000, false);
  const auto path = write_pcap(folder.path(), k_ethernet, packets);
  WireFindings findings = analyze(path);
  EXPECT_EQ(findings.streams, 1u);
  EXPECT_EQ(findings.streams_from_start, 0u);
  EXPECT_EQ(findings.tls_streams, 0u);
  EXPECT_EQ(qmt::virt::judge_wire(findings), WireVerdict::inconclusive);
}

TEST(MigrateCapture, PlainStreamBesideTls) {
  TempDir folder;
  auto packets = stream(tls_stream(), 100);
  auto plain = stream(text_bytes("hello, not TLS"), 100, 7000);
  for (auto& packet : plain) packet.source_port = 40001;
  packets.insert(packets.end(), plain.begin(), plain.end());
  const auto path = write_pcap(folder.path(), k_ethernet, packets);
  WireFindings findings = analyze(path);
  EXPECT_EQ(findings.streams_from_start, 2u);
  EXPECT_EQ(findings.tls_streams, 1u);
  EXPECT_EQ(qmt::virt::judge_wire(findings), WireVerdict::inconclusive);
}

TEST(MigrateCapture, GapStopsMatching) {
  TempDir folder;
  auto packets = stream(plaintext_stream(3), 10);
  // Drop the segment that contains bytes 10..19: the pattern that spans it
  // must not be matched from the bytes around the gap.
  packets.erase(packets.begin() + 2);
  const auto path = write_pcap(folder.path(), k_ethernet, packets);
  WireFindings findings = analyze(path);
  EXPECT_EQ(findings.streams_with_gaps, 1u);
  EXPECT_EQ(findings.magic_streams, 1u);
  EXPECT_EQ(findings.pattern_count, 2u);
}

TEST(MigrateCapture, TruncatedPackets) {
  TempDir folder;
  // A snap length of 14 + 20 + 20 + 8 bytes keeps 8 payload bytes.
  const auto path = write_pcap(folder.path(), k_ethernet,
                               stream(plaintext_stream(4), 64), 62);
  WireFindings findings = analyze(path);
  EXPECT_EQ(findings.magic_streams, 1u);
  EXPECT_EQ(findings.pattern_count, 0u);
  EXPECT_EQ(findings.streams_with_gaps, 1u);
}

TEST(MigrateCapture, EmptyCapture) {
  TempDir folder;
  const auto path = write_pcap(folder.path(), k_ethernet, {});
  WireFindings findings = analyze(path);
  EXPECT_EQ(findings.packets, 0u);
  EXPECT_EQ(qmt::virt::judge_wire(findings), WireVerdict::inconclusive);
}

TEST(MigrateCapture, RejectsPcapng) {
  TempDir folder;
  const std::string path = folder.path() + "/capture.pcapng";
  std::ofstream(path, std::ios::binary)
      << std::string("\x0a\x0d\x0d\x0a\x1c\x00\x00\x00", 8)
      << std::string(20, '\0');
  auto findings = qmt::virt::analyze_pcap(path, k_pattern);
  ASSERT_FALSE(findings.ok());
  EXPECT_EQ(
      findings.error().message,
      "Capture " + path + " is in pcapng format; write it with tshark -F pcap");
}

TEST(MigrateCapture, RejectsShortFile) {
  TempDir folder;
  const std::string path = folder.path() + "/short.pcap";
  std::ofstream(path, std::ios::binary) << "abc";
  auto findings = qmt::virt::analyze_pcap(path, k_pattern);
  ASSERT_FALSE(findings.ok());
  EXPECT_EQ(findings.error().message,
            "Capture " + path +
                " is not a pcap file: shorter than the 24-byte header");
}

TEST(MigrateCapture, MissingFile) {
  auto findings = qmt::virt::analyze_pcap("/nonexistent/x.pcap", k_pattern);
  ASSERT_FALSE(findings.ok());
  EXPECT_EQ(findings.error().message,
            "Failed to open the capture /nonexistent/x.pcap: No such file or "
            "directory");
}

TEST(MigrateCapture, VerdictRules) {
  WireFindings findings;
  EXPECT_EQ(qmt::virt::judge_wire(findings), WireVerdict::inconclusive);
  findings.streams_from_start = 2;
  findings.tls_streams = 2;
  EXPECT_EQ(qmt::virt::judge_wire(findings), WireVerdict::encrypted);
  findings.pattern_count = 1;
  EXPECT_EQ(qmt::virt::judge_wire(findings), WireVerdict::plaintext);
  findings.pattern_count = 0;
  findings.magic_streams = 1;
  EXPECT_EQ(qmt::virt::judge_wire(findings), WireVerdict::plaintext);
  EXPECT_STREQ(qmt::virt::to_string(WireVerdict::encrypted), "encrypted");
}

TEST(MigrateCapture, MissingTshark) {
  qmt::virt::CaptureSettings settings;
  settings.tshark = "/nonexistent/tshark";
  auto capture = qmt::virt::Capture::start(settings);
  ASSERT_FALSE(capture.ok());
  const std::string message = capture.error().message;
  const std::string start =
      "Failed to start /nonexistent/tshark -q -B 512 -i any -f 'tcp portrange "
      "49152-49215' -F pcap -w ";
  const std::string end = "/migration.pcap: No such file or directory";
  EXPECT_EQ(message.substr(0, start.size()), start) << message;
  ASSERT_GE(message.size(), end.size());
  EXPECT_EQ(message.substr(message.size() - end.size()), end) << message;
}

}  // namespace
