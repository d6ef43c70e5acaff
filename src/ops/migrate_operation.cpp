#include "ops/migrate_operation.hpp"

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "ops/host.hpp"
#include "virt/capture.hpp"
#include "virt/libvirt.hpp"
#include "virt/migrate.hpp"
#include "virt/migrate_figures.hpp"
#include "virt/migrate_leg.hpp"
#include "virt/migrate_policy.hpp"

namespace qmt::ops {

namespace {

using nlohmann::json;

// VIR_MIGRATE_PARALLEL and its parameter exist since libvirt 5.2.0.
constexpr unsigned long k_min_parallel_libvirt = 5002000;
// QEMU accepts at most 255 multifd channels (multifd-channels is a uint8).
constexpr long long k_max_parallel_connections = 255;
constexpr long long k_max_repeat = 50;
constexpr const char* k_default_pattern = "QMT-RAM-PATTERN!";
constexpr const char* k_default_qemu_log_dir = "/var/log/libvirt/qemu";
// libvirt's default for migrate_tls_x509_cert_dir (default_tls_x509_cert_dir).
constexpr const char* k_libvirt_default_cert_dir = "/etc/pki/qemu";

struct MigrateRequest {
  std::string domain;
  std::string libvirt_uri;
  std::string destination_uri;
  std::string migration_address;
  std::string tls_destination;
  std::optional<unsigned long long> bandwidth;
  int parallel_connections = 1;
  std::optional<double> timeout;
  bool unsafe = false;
  virt::EncryptionInputs encryption;
  bool compare = false;
  int repeat = 1;
  std::string return_uri;
  std::string return_migration_address;
  std::string return_tls_destination;
  bool capture = false;
  std::string capture_interface;
  std::string capture_file;
  std::string capture_pattern;
  std::string capture_filter;
  std::string qemu_log_dir;
  HostPaths paths;  // qemu.conf, read to explain a failed TLS migration
};

std::string text_option(const Params& params, const char* name) {
  const json& value = params[name];
  return value.is_string() ? value.get<std::string>() : std::string();
}

util::Result<MigrateRequest> read_request(const Params& params) {
  MigrateRequest request;
  request.domain = text_option(params, "domain");
  request.libvirt_uri = text_option(params, "libvirt_uri");
  request.destination_uri = text_option(params, "destination_uri");
  request.migration_address = text_option(params, "migration_address");
  request.tls_destination = text_option(params, "tls_destination");
  if (params["bandwidth"].is_number_integer()) {
    const long long bandwidth = params["bandwidth"].get<long long>();
    if (bandwidth < 1) {
      return util::Error{
          "Invalid value for option bandwidth: " + std::to_string(bandwidth) +
          " MiB/s; give 1 or more, or leave it unset for no "
          "limit"};
    }
    request.bandwidth = static_cast<unsigned long long>(bandwidth);
  }
  const long long parallel = params["parallel_connections"].get<long long>();
  if (parallel < 1 || parallel > k_max_parallel_connections) {
    return util::Error{"Invalid value for option parallel_connections: " +
                       std::to_string(parallel) + "; expected 1 to " +
                       std::to_string(k_max_parallel_connections)};
  }
  request.parallel_connections = static_cast<int>(parallel);
  if (params["timeout"].is_number_integer()) {
    const long long timeout = params["timeout"].get<long long>();
    if (timeout < 1) {
      return util::Error{
          "Invalid value for option timeout: " + std::to_string(timeout) +
          " s; give 1 or more, or leave it unset for no "
          "timeout"};
    }
    request.timeout = static_cast<double>(timeout);
  }
  request.unsafe = params["unsafe"].get<bool>();

  if (params["encrypted"].is_boolean()) {
    request.encryption.encrypted = params["encrypted"].get<bool>();
  }
  auto vm = virt::parse_encryption_setting("vm_encrypted",
                                           text_option(params, "vm_encrypted"));
  if (!vm) return vm.error();
  auto cluster = virt::parse_encryption_setting(
      "cluster_encrypted", text_option(params, "cluster_encrypted"));
  if (!cluster) return cluster.error();
  request.encryption.vm = vm.value();
  request.encryption.cluster = cluster.value();
  request.encryption.default_encrypted =
      params["default_encrypted"].get<bool>();
  if (params["cluster_level"].is_string()) {
    request.encryption.cluster_level = text_option(params, "cluster_level");
  }

  request.compare = params["compare"].get<bool>();
  const long long repeat = params["repeat"].get<long long>();
  if (repeat < 1 || repeat > k_max_repeat) {
    return util::Error{
        "Invalid value for option repeat: " + std::to_string(repeat) +
        "; expected 1 to " + std::to_string(k_max_repeat)};
  }
  request.repeat = static_cast<int>(repeat);
  request.return_uri = text_option(params, "return_uri");
  request.return_migration_address =
      text_option(params, "return_migration_address");
  request.return_tls_destination =
      text_option(params, "return_tls_destination");

  request.capture = params["capture"].get<bool>();
  request.capture_interface = text_option(params, "capture_interface");
  request.capture_file = text_option(params, "capture_file");
  request.capture_pattern = text_option(params, "capture_pattern");
  request.capture_filter = text_option(params, "capture_filter");
  request.qemu_log_dir = text_option(params, "qemu_log_dir");
  request.paths = host_paths(params);
  if (request.capture && request.capture_pattern.empty()) {
    return util::Error{
        "Invalid value for option capture_pattern: it must not "
        "be empty when capture is true"};
  }
  if (request.capture && request.compare && !request.capture_file.empty()) {
    return util::Error{
        "Option capture_file cannot be used with compare, "
        "which captures several migrations"};
  }
  return request;
}

std::string format_number(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

json optional_number(const std::optional<std::uint64_t>& value) {
  return value ? json(*value) : json(nullptr);
}

json optional_number(const std::optional<double>& value, int digits) {
  return value ? json(virt::round_to(*value, digits)) : json(nullptr);
}

json optional_text(const std::optional<std::string>& value) {
  return value ? json(*value) : json(nullptr);
}

json empty_as_null(const std::string& value) {
  return value.empty() ? json(nullptr) : json(value);
}

// The name QEMU on the source checks the destination's certificate
// against, and where libvirt takes it from.
std::pair<json, std::string> tls_name(const virt::MigrationRequest& request) {
  if (!request.encrypted) return {nullptr, "not encrypted"};
  if (!request.tls_destination.empty()) {
    return {request.tls_destination, "tls_destination"};
  }
  if (!request.migration_address.empty()) {
    return {virt::uri_host(request.migration_address), "migration_address"};
  }
  return {nullptr,
          "libvirt's default: the destination's migration_host setting, "
          "else its host name"};
}

json wire_to_json(const virt::WireReport& wire,
                  const virt::CaptureSettings& settings,
                  const std::string& pattern) {
  const virt::WireFindings& findings = wire.findings;
  json result = {
      {"verdict", virt::to_string(wire.verdict)},
      {"expected", wire.expected_encrypted ? "encrypted" : "plaintext"},
      {"matches", wire.matches()},
      {"tls_handshake", findings.tls_streams > 0},
      {"magic_seen", findings.magic_streams > 0},
      {"pattern_seen", findings.pattern_count > 0},
      {"pattern", pattern},
      {"pattern_count", findings.pattern_count},
      {"bytes_captured", findings.bytes_captured},
      {"payload_bytes", findings.payload_bytes},
      {"packets", findings.packets},
      {"packets_dropped", optional_number(wire.summary.packets_dropped)},
      {"streams", findings.streams},
      {"streams_from_start", findings.streams_from_start},
      {"tls_streams", findings.tls_streams},
      {"magic_streams", findings.magic_streams},
      {"streams_with_gaps", findings.streams_with_gaps},
      {"interface", settings.interface},
      {"filter", settings.filter},
      {"file", wire.file_kept ? json(wire.summary.file) : json(nullptr)},
  };
  return result;
}

std::string describe_wire(const virt::WireReport& wire) {
  const virt::WireFindings& findings = wire.findings;
  return std::string("the capture shows ") + virt::to_string(wire.verdict) +
         " (" + std::to_string(findings.tls_streams) + " of " +
         std::to_string(findings.streams_from_start) +
         " streams start with a TLS handshake, " +
         std::to_string(findings.magic_streams) +
         " start with QEVM, the pattern occurs " +
         std::to_string(findings.pattern_count) + " times in " +
         std::to_string(findings.payload_bytes) + " payload bytes)";
}

// Checks a leg's capture: a failure text, or "" when it confirms the mode.
std::string wire_problem(const virt::LegReport& report) {
  if (!report.capture_error.empty()) {
    return "the capture failed: " + report.capture_error;
  }
  if (!report.wire) return "";
  if (report.wire->matches()) return "";
  const std::string expected =
      report.wire->expected_encrypted ? "encrypted" : "plaintext";
  std::string text = "the capture does not confirm a " + expected +
                     " migration: " + describe_wire(*report.wire);
  if (!report.wire->expected_encrypted) {
    text += "; a check that cannot see plaintext cannot prove encryption";
  }
  return text;
}

bool is_active(const std::optional<std::string>& state) {
  return state && (*state == "running" || *state == "paused");
}

// Explains a failed encrypted migration from this host's own certificate
// set. Without a client certificate, the source's QEMU reports only "Cannot
// write to TLS channel" while the destination rejects it. Returns "" when
// the set looks complete or cannot be read.
std::string diagnose_source_certificates(const HostPaths& paths) {
  auto loaded = load_qemu_conf(paths);
  if (!loaded) return "";
  auto settings = read_migration_settings(loaded.value());
  if (!settings) return "";
  const std::string folder =
      settings->cert_dir.value_or(k_libvirt_default_cert_dir);
  std::vector<std::string> missing;
  for (const char* name : {"client-cert.pem", "client-key.pem"}) {
    auto mode = util::stat_path(paths.resolve(folder + "/" + name));
    if (mode && !mode.value()) missing.push_back(name);
  }
  if (missing.empty()) return "";
  std::string names = missing.front();
  if (missing.size() > 1) names += " and " + missing.back();
  return "The source's certificate folder " + folder + " has no " + names +
         ", so a destination that verifies client certificates "
         "(migrate_tls_x509_verify = 1) rejects the connection";
}

// Describes a failed leg. The source's error comes first, because the client
// may only receive a generic error while the source logs the cause.
std::string failure_text(const std::string& domain,
                         const virt::MigrationRequest& request,
                         const virt::LegReport& report) {
  const std::string client = virt::summarize_qemu_messages(report.run.error);
  std::string cause = client;
  if (!report.source_log_messages.empty()) cause = report.source_log_messages;
  if (!report.job_error.empty()) cause = report.job_error;
  std::string text;
  if (report.run.timed_out) {
    text = "Migration of " + domain + " to " + request.destination_uri +
           " exceeded the timeout of " +
           format_number(*request.timeout_seconds, 0) + " s and was aborted (" +
           cause + ")";
    if (!report.run.abort_error.empty()) {
      text += "; aborting the job failed: " + report.run.abort_error;
    }
  } else {
    text = "Migration of " + domain + " to " + request.destination_uri +
           " failed: " + cause;
  }
  if (cause != client && client.find(cause) == std::string::npos) {
    text += " (libvirt reported to the client: " + client + ")";
  }
  if (request.encrypted && request.tls_destination.empty() &&
      cause.find("does not match the hostname") != std::string::npos) {
    text +=
        ". Set tls_destination to a name in the destination's "
        "certificate, or add this name to the certificate";
  }
  if (request.encrypted && request.parallel_connections > 1) {
    text +=
        ". Parallel connections with TLS need libvirt and QEMU that "
        "support multifd over TLS on both hosts";
  }
  text += ". ";
  if (report.source_state && *report.source_state == "running") {
    text += domain + " still runs on the source";
  } else {
    text += domain + " is " +
            report.source_state.value_or("in an unknown state") +
            " on the source";
  }
  if (report.destination_state) {
    text +=
        is_active(report.destination_state)
            ? ", and it is " + *report.destination_state + " on the destination"
            : "; the destination has no running copy (" +
                  *report.destination_state + ")";
  }
  return text;
}

// Connections and names shared by the single migration and the comparison.
struct Session {
  virt::ConnectPtr source{nullptr, virConnectClose};
  virt::ConnectPtr destination{nullptr, virConnectClose};
  std::string uuid;
  std::string source_name;       // the source daemon's host name
  std::string destination_name;  // the destination's host, for messages
};

virt::MigrationRequest forward_request(const MigrateRequest& request,
                                       bool encrypted) {
  virt::MigrationRequest leg;
  leg.destination_uri = request.destination_uri;
  leg.migration_address = request.migration_address;
  leg.tls_destination = request.tls_destination;
  leg.encrypted = encrypted;
  leg.bandwidth_mib_s = request.bandwidth;
  leg.parallel_connections = request.parallel_connections;
  leg.unsafe = request.unsafe;
  leg.timeout_seconds = request.timeout;
  return leg;
}

std::optional<virt::CaptureSettings> capture_settings(
    const MigrateRequest& request) {
  if (!request.capture) return std::nullopt;
  virt::CaptureSettings settings;
  settings.interface = request.capture_interface;
  settings.filter = request.capture_filter;
  settings.file = request.capture_file;
  return settings;
}

// The source QEMU's log, readable only when the source daemon runs on this
// host.
std::string source_log_path(const MigrateRequest& request) {
  if (!virt::uri_host(request.libvirt_uri).empty()) return "";
  if (request.qemu_log_dir.empty()) return "";
  return request.qemu_log_dir + "/" + request.domain + ".log";
}

virt::ProgressSink progress_sink(const Context& context,
                                 const std::string& prefix) {
  return [&context, prefix](const virt::JobStats& stats,
                            std::optional<double> rate) {
    if (!context.progress) return;
    context.progress(prefix + virt::progress_line(stats.data_remaining,
                                                  stats.data_total, rate));
  };
}

void add_leg_figures(json& data, const virt::LegReport& report) {
  data["duration_seconds"] = virt::round_to(report.run.duration_seconds, 3);
  data["job_time_ms"] =
      report.stats ? optional_number(report.stats->time_elapsed_ms) : nullptr;
  data["downtime_ms"] =
      report.stats ? optional_number(report.stats->downtime_ms) : nullptr;
  data["bytes_transferred"] = optional_number(report.bytes_transferred());
  data["memory_total"] =
      report.stats ? optional_number(report.stats->memory_total) : nullptr;
  data["throughput_mib_s"] = optional_number(report.throughput_mib_s(), 1);
  data["stats_source"] = empty_as_null(report.stats_source);
}

Outcome run_single(const MigrateRequest& request,
                   const virt::EncryptionDecision& decision, Session& session,
                   const Context& context, Outcome outcome) {
  virt::LegSpec spec;
  spec.source = session.source.get();
  spec.destination = session.destination.get();
  spec.uuid = session.uuid;
  spec.request = forward_request(request, decision.encrypted);
  spec.capture = capture_settings(request);
  spec.capture_pattern = request.capture_pattern;
  spec.source_log = source_log_path(request);

  auto report = virt::run_leg(spec, progress_sink(context, ""));
  if (!report) {
    outcome.failed = true;
    outcome.msg = "Migration of " + request.domain +
                  " not started: " + report.error().message;
    return outcome;
  }

  json& data = outcome.data;
  add_leg_figures(data, report.value());
  data["timed_out"] = report->run.timed_out;
  data["source_state"] = optional_text(report->source_state);
  data["destination_state"] = optional_text(report->destination_state);
  data["job_error"] = empty_as_null(report->job_error);
  data["source_qemu_log"] = empty_as_null(report->source_log_messages);
  if (report->wire) {
    data["wire"] =
        wire_to_json(*report->wire, *spec.capture, request.capture_pattern);
  }

  if (!report->run.succeeded) {
    outcome.failed = true;
    outcome.msg = failure_text(request.domain, spec.request, report.value());
    if (spec.request.encrypted && !report->run.timed_out &&
        virt::uri_host(request.libvirt_uri).empty()) {
      const std::string diagnosis = diagnose_source_certificates(request.paths);
      if (!diagnosis.empty()) outcome.msg = diagnosis + ". " + outcome.msg;
    }
    if (is_active(report->destination_state)) {
      outcome.warnings.push_back(
          request.domain + " is " + *report->destination_state +
          " on the destination after the failed migration; check both "
          "hosts before starting it anywhere");
    }
    return outcome;
  }

  outcome.changed = true;
  std::string figures = format_number(report->run.duration_seconds, 2) + " s";
  if (auto rate = report->throughput_mib_s()) {
    figures += ", " + format_number(*rate, 1) + " MiB/s";
  }
  if (report->stats && report->stats->downtime_ms) {
    figures +=
        ", downtime " + std::to_string(*report->stats->downtime_ms) + " ms";
  }
  outcome.msg = "Migrated " + request.domain + " from " + session.source_name +
                " to " + session.destination_name + " " +
                (decision.encrypted ? "encrypted with TLS" : "unencrypted") +
                " in " + figures;
  const std::string problem = wire_problem(report.value());
  if (!problem.empty()) {
    outcome.failed = true;
    outcome.msg += ", but " + problem;
  } else if (report->wire) {
    outcome.msg += "; " + describe_wire(*report->wire);
  }
  return outcome;
}

// Figures of one mode across the comparison's rounds.
struct ModeFigures {
  std::vector<double> durations;
  std::vector<double> job_times;
  std::vector<double> throughputs;
  std::vector<double> downtimes;

  void add(const virt::LegReport& report) {
    durations.push_back(report.run.duration_seconds);
    if (auto rate = report.throughput_mib_s()) throughputs.push_back(*rate);
    if (report.stats && report.stats->time_elapsed_ms) {
      job_times.push_back(static_cast<double>(*report.stats->time_elapsed_ms));
    }
    if (report.stats && report.stats->downtime_ms) {
      downtimes.push_back(static_cast<double>(*report.stats->downtime_ms));
    }
  }

  json summary() const {
    return {{"runs", durations.size()},
            {"duration_seconds", optional_number(virt::median(durations), 3)},
            {"job_time_ms", optional_number(virt::median(job_times), 0)},
            {"throughput_mib_s", optional_number(virt::median(throughputs), 1)},
            {"downtime_ms", optional_number(virt::median(downtimes), 0)}};
  }
};

std::optional<double> ratio(const std::optional<double>& numerator,
                            const std::optional<double>& denominator) {
  if (!numerator || !denominator || !(*denominator > 0)) return std::nullopt;
  return *numerator / *denominator;
}

Outcome run_compare(const MigrateRequest& request, Session& session,
                    const Context& context, Outcome outcome) {
  std::string return_uri = request.return_uri;
  if (return_uri.empty()) {
    return_uri =
        virt::replace_uri_host(request.destination_uri, session.source_name);
  }
  if (return_uri.empty()) {
    return failure(
        "compare needs return_uri, the source daemon as the "
        "destination reaches it: " +
        request.destination_uri + " has no host to derive it from");
  }
  outcome.data["return_uri"] = return_uri;
  auto capture = capture_settings(request);

  ModeFigures plain;
  ModeFigures encrypted;
  json runs = json::array();
  const int legs_per_round = 2;
  for (int round = 0; round < request.repeat; ++round) {
    // Odd rounds encrypt the way out and even rounds the way back, so with
    // two or more rounds both modes run in both directions.
    const bool out_encrypted = round % 2 == 1;
    for (int leg = 0; leg < legs_per_round; ++leg) {
      const bool outward = leg == 0;
      const bool leg_encrypted = outward ? out_encrypted : !out_encrypted;
      virt::LegSpec spec;
      spec.uuid = session.uuid;
      spec.capture = capture;
      spec.capture_pattern = request.capture_pattern;
      spec.request = forward_request(request, leg_encrypted);
      std::string from = session.source_name;
      std::string to = session.destination_name;
      if (outward) {
        spec.source = session.source.get();
        spec.destination = session.destination.get();
        spec.source_log = source_log_path(request);
      } else {
        spec.source = session.destination.get();
        spec.destination = session.source.get();
        spec.request.destination_uri = return_uri;
        spec.request.migration_address = request.return_migration_address;
        spec.request.tls_destination = request.return_tls_destination;
        // NOTE: the way back starts from the destination's daemon, whose
        // QEMU log this host cannot read, so a failure there reports only
        // libvirt's message.
        std::swap(from, to);
      }
      const std::string mode = leg_encrypted ? "encrypted" : "unencrypted";
      const std::string prefix = "round " + std::to_string(round + 1) + "/" +
                                 std::to_string(request.repeat) + " " + mode +
                                 " " + from + " -> " + to + ": ";
      auto report = virt::run_leg(spec, progress_sink(context, prefix));

      json run = {{"round", round + 1},
                  {"from", from},
                  {"to", to},
                  {"encrypted", leg_encrypted}};
      if (!report) {
        run["error"] = report.error().message;
        runs.push_back(run);
        outcome.data["comparison"] = {{"repeat", request.repeat},
                                      {"runs", runs}};
        outcome.failed = true;
        outcome.msg = "Comparison stopped in round " +
                      std::to_string(round + 1) + ": " + report.error().message;
        return outcome;
      }
      add_leg_figures(run, report.value());
      run["source_state"] = optional_text(report->source_state);
      run["destination_state"] = optional_text(report->destination_state);
      if (report->wire) {
        run["wire"] =
            wire_to_json(*report->wire, *capture, request.capture_pattern);
      }
      runs.push_back(run);
      if (report->run.succeeded) outcome.changed = true;

      std::string problem;
      if (!report->run.succeeded) {
        problem = failure_text(request.domain, spec.request, report.value());
      } else {
        problem = wire_problem(report.value());
      }
      if (!problem.empty()) {
        outcome.data["comparison"] = {{"repeat", request.repeat},
                                      {"runs", runs}};
        outcome.data["source_state"] =
            outward ? optional_text(report->source_state)
                    : optional_text(report->destination_state);
        outcome.data["destination_state"] =
            outward ? optional_text(report->destination_state)
                    : optional_text(report->source_state);
        outcome.failed = true;
        outcome.msg = "Comparison stopped in round " +
                      std::to_string(round + 1) + " (" + mode + ", " + from +
                      " -> " + to + "): " + problem;
        return outcome;
      }

      (leg_encrypted ? encrypted : plain).add(report.value());
      if (!outward) {
        outcome.data["source_state"] = optional_text(report->destination_state);
        outcome.data["destination_state"] = optional_text(report->source_state);
      }
    }
  }

  json comparison = {{"repeat", request.repeat},
                     {"runs", runs},
                     {"unencrypted", plain.summary()},
                     {"encrypted", encrypted.summary()}};
  const auto plain_duration = virt::median(plain.durations);
  const auto tls_duration = virt::median(encrypted.durations);
  const auto plain_rate = virt::median(plain.throughputs);
  const auto tls_rate = virt::median(encrypted.throughputs);
  const auto duration_ratio = ratio(tls_duration, plain_duration);
  const auto job_time_ratio =
      ratio(virt::median(encrypted.job_times), virt::median(plain.job_times));
  const auto throughput_ratio = ratio(tls_rate, plain_rate);
  comparison["duration_ratio"] = optional_number(duration_ratio, 3);
  comparison["job_time_ratio"] = optional_number(job_time_ratio, 3);
  comparison["throughput_ratio"] = optional_number(throughput_ratio, 3);
  // The job time leaves out connecting the daemons and starting QEMU on the
  // destination, which cost the same in both modes.
  const auto overhead = job_time_ratio ? job_time_ratio : duration_ratio;
  comparison["overhead_percent"] =
      overhead ? json(virt::round_to((*overhead - 1) * 100, 1)) : json(nullptr);
  outcome.data["comparison"] = comparison;

  std::string text = "Compared " + request.domain + " between " +
                     session.source_name + " and " + session.destination_name +
                     " over " + std::to_string(request.repeat) + " round" +
                     (request.repeat == 1 ? "" : "s") + ": unencrypted " +
                     format_number(plain_duration.value_or(0), 2) + " s";
  if (plain_rate) text += " (" + format_number(*plain_rate, 1) + " MiB/s)";
  text += ", encrypted " + format_number(tls_duration.value_or(0), 2) + " s";
  if (tls_rate) text += " (" + format_number(*tls_rate, 1) + " MiB/s)";
  if (overhead) {
    text += "; encrypted takes " + format_number(*overhead, 2) +
            " times as long" + (job_time_ratio ? " (job time)" : "");
  }
  if (request.repeat > 1) text += " (medians)";
  outcome.msg = text;
  return outcome;
}

Outcome run_migrate(const Params& params, const Context& context) {
  auto parsed = read_request(params);
  if (!parsed) return failure(parsed.error().message);
  const MigrateRequest& request = parsed.value();

  auto decided = virt::resolve_encryption(request.encryption);
  if (!decided) return failure(decided.error().message);
  virt::EncryptionDecision decision = decided.value();

  Outcome outcome;
  json& data = outcome.data;
  data["domain"] = request.domain;
  data["libvirt_uri"] = request.libvirt_uri;
  data["destination_uri"] = request.destination_uri;
  data["migration_address"] = empty_as_null(request.migration_address);
  data["bandwidth"] =
      request.bandwidth ? json(*request.bandwidth) : json(nullptr);
  data["parallel_connections"] = request.parallel_connections;
  data["unsafe"] = request.unsafe;

  if (request.compare) {
    if (decision.requested && !decision.encrypted) {
      return failure(
          "compare needs an encrypted migration, which is not "
          "offered here: " +
          decision.warning);
    }
    if (request.encryption.cluster_level) {
      auto level = virt::parse_cluster_level(*request.encryption.cluster_level);
      auto minimum =
          virt::parse_cluster_level(virt::k_min_encrypted_cluster_level);
      if (virt::compare_cluster_levels(level.value(), minimum.value()) < 0) {
        return failure(
            "compare needs an encrypted migration, which cluster "
            "level " +
            level->text + " does not offer (" +
            virt::k_min_encrypted_cluster_level + " or higher)");
      }
    }
    data["encrypted"] = true;
    data["encryption_reason"] =
        "compare runs every round once unencrypted and once encrypted; the "
        "encryption options do not apply";
  } else {
    data["encrypted"] = decision.encrypted;
    data["encryption_reason"] = decision.reason;
    data["encryption_decided_by"] = decision.decided_by;
    if (!decision.warning.empty()) outcome.warnings.push_back(decision.warning);
  }
  data["tls_destination"] = empty_as_null(request.tls_destination);
  const auto [name, name_source] =
      tls_name(forward_request(request, request.compare || decision.encrypted));
  data["tls_name"] = name;
  data["tls_name_source"] = name_source;
  if (!request.compare && !decision.encrypted &&
      !request.tls_destination.empty()) {
    outcome.warnings.push_back("tls_destination " + request.tls_destination +
                               " is not used because the migration is not "
                               "encrypted");
  }
  if (request.unsafe) {
    outcome.warnings.push_back(
        "unsafe is true: libvirt skips its safety checks "
        "(VIR_MIGRATE_UNSAFE), such as the check for disks that are not "
        "shared and use a cache mode that can lose writes");
  }

  Session session;
  auto source = virt::open_connection(request.libvirt_uri, false);
  if (!source) return failure(source.error().message);
  session.source = std::move(source.value());
  auto domain = virt::find_domain(session.source.get(), request.domain,
                                  request.libvirt_uri);
  if (!domain) return failure(domain.error().message);
  auto uuid = virt::domain_uuid(domain->get());
  if (!uuid) return failure(uuid.error().message);
  session.uuid = uuid.value();
  auto state = virt::domain_state(session.source.get(), session.uuid);
  if (!state) return failure(state.error().message);
  if (state.value() != "running" && state.value() != "paused") {
    return failure("Domain " + request.domain + " at " + request.libvirt_uri +
                   " is " + state.value() +
                   "; only a running or paused domain migrates live");
  }
  auto hostname = virt::connection_hostname(session.source.get());
  session.source_name = hostname ? hostname.value() : request.libvirt_uri;
  session.destination_name = virt::uri_host(request.destination_uri);
  if (session.destination_name.empty()) {
    session.destination_name = request.destination_uri;
  }
  data["source"] = session.source_name;

  if (request.parallel_connections > 1) {
    unsigned long version = 0;
    if (virConnectGetLibVersion(session.source.get(), &version) == 0 &&
        version < k_min_parallel_libvirt) {
      return failure(
          "parallel_connections needs libvirt 5.2.0 or later on "
          "the source, which runs libvirt " +
          virt::version_text(version));
    }
  }

  auto destination = virt::open_connection(request.destination_uri, false);
  if (destination) {
    session.destination = std::move(destination.value());
  } else if (request.compare) {
    return failure(
        "compare migrates back from the destination, so it needs "
        "a connection to it: " +
        destination.error().message);
  } else {
    outcome.warnings.push_back("The destination state cannot be read: " +
                               destination.error().message);
  }

  if (context.check_mode) {
    outcome.changed = true;
    if (request.compare) {
      outcome.msg = "Would compare unencrypted and encrypted migrations of " +
                    request.domain + " between " + session.source_name +
                    " and " + session.destination_name + " over " +
                    std::to_string(request.repeat) + " round(s)";
    } else {
      outcome.msg =
          "Would migrate " + request.domain + " from " + session.source_name +
          " to " + session.destination_name + " " +
          (decision.encrypted ? "encrypted with TLS" : "unencrypted") + " (" +
          decision.reason + ")";
    }
    return outcome;
  }

  if (request.compare) {
    return run_compare(request, session, context, std::move(outcome));
  }
  return run_single(request, decision, session, context, std::move(outcome));
}

}  // namespace

Operation migrate_operation() {
  Operation operation;
  operation.module_name = "qemu_migration_tls_migrate";
  operation.command_name = "migrate";
  operation.summary =
      "Live-migrate a domain peer to peer, encrypted with QEMU native TLS or "
      "not, and report or prove the result";
  const std::vector<std::string> settings = {"true", "false", "inherit"};
  operation.options = {
      {"domain",
       OptionType::str,
       "Name of the domain to migrate.",
       nullptr,
       {},
       true,
       false,
       {"name"}},
      {"libvirt_uri",
       OptionType::str,
       "libvirt URI of the source daemon, as this host reaches it.",
       "qemu:///system",
       {},
       false,
       false,
       {"uri"}},
      {"destination_uri",
       OptionType::str,
       "libvirt URI of the destination daemon as the source daemon reaches "
       "it (peer to peer), for example qemu+tcp://h2.example/system.",
       nullptr,
       {},
       true,
       false,
       {"dest_uri"}},
      {"migration_address",
       OptionType::str,
       "Where QEMU sends the migration stream (VIR_MIGRATE_PARAM_URI), for "
       "example tcp://10.0.7.12 on a migration network. Unset: libvirt asks "
       "the destination (its migration_host, else its host name).",
       nullptr,
       {},
       false,
       false,
       {}},
      {"tls_destination",
       OptionType::str,
       "Name the destination's certificate must carry "
       "(VIR_MIGRATE_PARAM_TLS_DESTINATION, libvirt 6.0 or later). Unset: "
       "the host of the migration address.",
       nullptr,
       {},
       false,
       false,
       {}},
      {"bandwidth",
       OptionType::integer,
       "Maximum migration bandwidth in MiB/s (VIR_MIGRATE_PARAM_BANDWIDTH). "
       "Unset: no limit.",
       nullptr,
       {},
       false,
       false,
       {}},
      {"parallel_connections",
       OptionType::integer,
       "Number of connections for the migration stream; 2 or more sets "
       "VIR_MIGRATE_PARALLEL (libvirt 5.2 or later, QEMU multifd).",
       1,
       {},
       false,
       false,
       {}},
      {"timeout",
       OptionType::integer,
       "Seconds after which the migration job is aborted "
       "(virDomainAbortJob); the domain keeps running on the source. Unset: "
       "no timeout.",
       nullptr,
       {},
       false,
       false,
       {}},
      {"unsafe",
       OptionType::boolean,
       "Skip libvirt's safety checks (VIR_MIGRATE_UNSAFE). Needed for disks "
       "that are not shared unless they are read-only.",
       false,
       {},
       false,
       false,
       {}},
      {"encrypted",
       OptionType::boolean,
       "Encrypt the migration with QEMU native TLS. Unset: decided by "
       "vm_encrypted, cluster_encrypted and default_encrypted.",
       nullptr,
       {},
       false,
       false,
       {}},
      {"vm_encrypted",
       OptionType::str,
       "The VM's encryption setting, used when encrypted is unset; inherit "
       "passes to cluster_encrypted.",
       "inherit",
       settings,
       false,
       false,
       {}},
      {"cluster_encrypted",
       OptionType::str,
       "The cluster's encryption setting, used when encrypted is unset and "
       "vm_encrypted is inherit; inherit passes to default_encrypted.",
       "inherit",
       settings,
       false,
       false,
       {}},
      {"default_encrypted",
       OptionType::boolean,
       "Encryption when every other setting is unset or inherit.",
       false,
       {},
       false,
       false,
       {}},
      {"cluster_level",
       OptionType::str,
       "Cluster compatibility level such as 4.4. Below 4.4 the migration is "
       "not encrypted, with a warning. Unset: no level limit.",
       nullptr,
       {},
       false,
       false,
       {}},
      {"compare",
       OptionType::boolean,
       "Migrate to the destination and back, once unencrypted and once "
       "encrypted per round, and report both figures and their ratios. The "
       "domain ends on the source.",
       false,
       {},
       false,
       false,
       {}},
      {"repeat",
       OptionType::integer,
       "Rounds for compare; figures are medians. Rounds alternate which way "
       "is encrypted.",
       1,
       {},
       false,
       false,
       {}},
      {"return_uri",
       OptionType::str,
       "For compare: libvirt URI of the source daemon as the destination "
       "reaches it. Unset: destination_uri with the source's host name.",
       nullptr,
       {},
       false,
       false,
       {}},
      {"return_migration_address",
       OptionType::str,
       "For compare: migration_address for the way back.",
       nullptr,
       {},
       false,
       false,
       {}},
      {"return_tls_destination",
       OptionType::str,
       "For compare: tls_destination for the way back.",
       nullptr,
       {},
       false,
       false,
       {}},
      {"capture",
       OptionType::boolean,
       "Capture the migration traffic with tshark in this host's network "
       "namespace and check it: TLS handshakes and no plaintext for an "
       "encrypted migration, QEMU's QEVM magic or the pattern for an "
       "unencrypted one.",
       false,
       {},
       false,
       false,
       {}},
      {"capture_interface",
       OptionType::str,
       "Interface tshark captures on.",
       "any",
       {},
       false,
       false,
       {}},
      {"capture_filter",
       OptionType::str,
       "tshark capture filter that selects the migration traffic.",
       virt::k_default_capture_filter,
       {},
       false,
       false,
       {}},
      {"capture_file",
       OptionType::path,
       "Keep the capture (pcap) at this path. Unset: the capture is "
       "removed.",
       nullptr,
       {},
       false,
       false,
       {}},
      {"capture_pattern",
       OptionType::str,
       "Bytes of guest memory to look for in the captured payload.",
       k_default_pattern,
       {},
       false,
       false,
       {}},
      {"qemu_log_dir",
       OptionType::path,
       "Folder of the source's QEMU logs (NAME.log), read after a failure for "
       "QEMU's own error, such as a certificate that does not match. Used "
       "when libvirt_uri names no host, that is the daemon on this host.",
       k_default_qemu_log_dir,
       {},
       false,
       false,
       {}},
  };
  OptionSpecs paths = qemu_conf_options();
  operation.options.insert(operation.options.end(), paths.begin(), paths.end());
  operation.run = run_migrate;
  return operation;
}

}  // namespace qmt::ops
