#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "util/result.hpp"
#include "virt/capture.hpp"
#include "virt/capture_pcap.hpp"
#include "virt/migrate.hpp"

namespace qmt::virt {

// One migration of one domain from one daemon to another.
struct LegSpec {
  virConnectPtr source = nullptr;       // the daemon that runs the domain
  virConnectPtr destination = nullptr;  // for states and stats; may be null
  std::string uuid;                     // the domain
  MigrationRequest request;
  // Capture the migration traffic in this process's network namespace.
  std::optional<CaptureSettings> capture;
  std::string capture_pattern;  // searched in the captured payload
  // The source QEMU's log file, where libvirt writes QEMU's stderr. It is
  // read after a failure for the cause. Empty when this process cannot read
  // the source's files.
  std::string source_log;
};

// The verdict of a capture and the mode the migration was meant to have.
struct WireReport {
  WireFindings findings;
  WireVerdict verdict = WireVerdict::inconclusive;
  CaptureSummary summary;
  bool expected_encrypted = false;
  bool file_kept = false;

  // True when the verdict is the one the migration's mode should give.
  bool matches() const {
    return verdict == (expected_encrypted ? WireVerdict::encrypted
                                          : WireVerdict::plaintext);
  }
};

// The outcome of one leg.
struct LegReport {
  MigrationRun run;
  std::optional<JobStats> stats;  // completed job, else the last poll
  // The origin of `stats`: "source", "destination" (libvirt passes the
  // source's figures to the destination) or "progress" (the last poll).
  std::string stats_source;
  std::string job_error;  // the source job's error message, on failure
  // QEMU's messages in the source log since the migration started, read on
  // failure. libvirt 9.0 keeps no completed job for a failed peer-to-peer
  // migration, so a TLS verification error shows only here.
  std::string source_log_messages;
  std::optional<std::string> source_state;       // nullopt: unreadable
  std::optional<std::string> destination_state;  // nullopt: unreadable
  std::optional<WireReport> wire;
  std::string capture_error;  // the capture failed after the migration

  // data_processed, else memory_processed, of `stats`.
  std::optional<std::uint64_t> bytes_transferred() const;
  // bytes_transferred in MiB/s over the job's elapsed time (libvirt's
  // time_elapsed leaves out connecting the daemons), else over the
  // wall-clock duration. nullopt for a failed migration.
  std::optional<double> throughput_mib_s() const;
};

// Condenses QEMU log text or a libvirt error that quotes it to its
// messages: drops libvirt's own timestamped log lines ("2026-01-01
// 10:00:00.000+0000: initiating migration"), strips QEMU's timestamp and
// program prefix wherever they occur, skips repeated lines, and joins the
// rest with "; ".
std::string summarize_qemu_messages(const std::string& text);

// Runs one leg: starts the capture when requested (an error when tshark
// cannot start, before anything migrates), migrates, stops and analyses
// the capture, reads the completed job's statistics and the domain's state
// on both sides. A failed migration is a report with run.succeeded false.
util::Result<LegReport> run_leg(const LegSpec& spec,
                                const ProgressSink& progress);

}  // namespace qmt::virt
