#include "virt/migrate_leg.hpp"

#include <sys/stat.h>

#include <fstream>
#include <regex>
#include <vector>

#include "virt/migrate_figures.hpp"

namespace qmt::virt {

namespace {

bool has_figures(const JobStats& stats) {
  return stats.data_processed.has_value() || stats.memory_processed.has_value();
}

// A domain's completed statistics belong to its last finished job, which
// may be an earlier migration: accept only those whose outcome matches
// this run's.
bool belongs_to_run(const JobStats& stats, bool succeeded) {
  if (succeeded) return stats.type == VIR_DOMAIN_JOB_COMPLETED;
  return stats.type == VIR_DOMAIN_JOB_FAILED ||
         stats.type == VIR_DOMAIN_JOB_CANCELLED;
}

// Reads the completed job's statistics: on the source first, which keeps
// them for a persistent domain and for a failed job, then on the
// destination, which receives the source's figures with the migration.
void collect_stats(const LegSpec& spec, virDomainPtr source_domain,
                   LegReport& report) {
  const bool succeeded = report.run.succeeded;
  auto source_stats = read_job_stats(source_domain, true);
  if (source_stats && belongs_to_run(source_stats.value(), succeeded)) {
    if (!succeeded) report.job_error = source_stats->error_message;
    if (has_figures(source_stats.value())) {
      report.stats = source_stats.value();
      report.stats_source = "source";
      return;
    }
  }
  if (succeeded && spec.destination != nullptr) {
    virDomainPtr found =
        virDomainLookupByUUIDString(spec.destination, spec.uuid.c_str());
    if (found != nullptr) {
      DomainPtr destination_domain(found, virDomainFree);
      auto destination_stats = read_job_stats(destination_domain.get(), true);
      if (destination_stats &&
          belongs_to_run(destination_stats.value(), true) &&
          has_figures(destination_stats.value())) {
        report.stats = destination_stats.value();
        report.stats_source = "destination";
        return;
      }
    }
  }
  if (report.run.last_stats) {
    report.stats = report.run.last_stats;
    report.stats_source = "progress";
  }
}

// Returns the size of `path`, or 0 when it cannot be read.
std::uint64_t file_size(const std::string& path) {
  struct stat info {};
  if (path.empty() || ::stat(path.c_str(), &info) != 0) return 0;
  return static_cast<std::uint64_t>(info.st_size);
}

// Reads what was appended to `path` after `offset`, at most `limit` bytes
// (the last ones).
std::string read_appended(const std::string& path, std::uint64_t offset,
                          std::uint64_t limit) {
  const std::uint64_t size = file_size(path);
  if (size <= offset) return "";
  if (size - offset > limit) offset = size - limit;
  std::ifstream file(path, std::ios::binary);
  if (!file) return "";
  file.seekg(static_cast<std::streamoff>(offset));
  std::string text(static_cast<std::size_t>(size - offset), '\0');
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(file.gcount()));
  return text;
}

}  // namespace

std::string summarize_qemu_messages(const std::string& text) {
  static const std::regex k_libvirt_line(
      R"(^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d+[+-]\d{4}: )");
  // QEMU's prefix, also where libvirt quotes QEMU's output inside a line.
  static const std::regex k_qemu_prefix(
      R"((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+Z )?qemu-system-[A-Za-z0-9_]+: )");
  std::vector<std::string> messages;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (std::regex_search(line, k_libvirt_line)) continue;
    line = std::regex_replace(line, k_qemu_prefix, "");
    if (line.empty()) continue;
    if (!messages.empty() && messages.back() == line) continue;
    messages.push_back(line);
  }
  std::string joined;
  for (const auto& message : messages) {
    joined += (joined.empty() ? "" : "; ") + message;
  }
  return joined;
}

std::optional<std::uint64_t> LegReport::bytes_transferred() const {
  if (!stats) return std::nullopt;
  if (stats->data_processed) return stats->data_processed;
  return stats->memory_processed;
}

std::optional<double> LegReport::throughput_mib_s() const {
  auto bytes = bytes_transferred();
  if (!bytes || !run.succeeded) return std::nullopt;
  if (stats && stats->time_elapsed_ms && *stats->time_elapsed_ms > 0) {
    return mib_per_second(*bytes,
                          static_cast<double>(*stats->time_elapsed_ms) / 1000);
  }
  return mib_per_second(*bytes, run.duration_seconds);
}

util::Result<LegReport> run_leg(const LegSpec& spec,
                                const ProgressSink& progress) {
  virDomainPtr found =
      virDomainLookupByUUIDString(spec.source, spec.uuid.c_str());
  if (found == nullptr) {
    return util::Error{"Domain " + spec.uuid +
                       " not found on the source: " + last_error_text()};
  }
  DomainPtr domain(found, virDomainFree);

  std::optional<Capture> capture;
  if (spec.capture) {
    auto started = Capture::start(*spec.capture);
    if (!started) return started.error();
    capture = std::move(started.value());
  }

  const std::uint64_t log_offset = file_size(spec.source_log);
  LegReport report;
  report.run = run_migration(domain.get(), spec.request, progress);
  if (!report.run.succeeded && !spec.source_log.empty()) {
    constexpr std::uint64_t k_log_limit = 64 * 1024;
    report.source_log_messages = summarize_qemu_messages(
        read_appended(spec.source_log, log_offset, k_log_limit));
  }

  if (capture) {
    auto summary = capture->stop();
    if (!summary) {
      report.capture_error = summary.error().message;
    } else {
      auto findings = analyze_pcap(capture->file(), spec.capture_pattern);
      if (!findings) {
        report.capture_error = findings.error().message;
      } else {
        WireReport wire;
        wire.findings = findings.value();
        wire.verdict = judge_wire(wire.findings);
        wire.summary = summary.value();
        wire.expected_encrypted = spec.request.encrypted;
        wire.file_kept = !spec.capture->file.empty();
        report.wire = wire;
      }
    }
  }

  collect_stats(spec, domain.get(), report);
  auto source_state = domain_state(spec.source, spec.uuid);
  if (source_state) report.source_state = source_state.value();
  if (spec.destination != nullptr) {
    auto destination_state = domain_state(spec.destination, spec.uuid);
    if (destination_state) report.destination_state = destination_state.value();
  }
  return report;
}

}  // namespace qmt::virt
