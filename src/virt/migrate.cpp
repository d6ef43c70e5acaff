#include "virt/migrate.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace qmt::virt {

namespace {

using Clock = std::chrono::steady_clock;

// The span over which the progress rate is averaged.
constexpr std::chrono::seconds k_rate_window{1};

// libvirt's per-thread error storage needs virInitialize before any call
// that may report an error, and the typed parameter helpers can run before
// a connection has been opened.
void initialize_libvirt() {
  static const int k_initialized = virInitialize();
  (void)k_initialized;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

TypedParams::TypedParams(TypedParams&& other) noexcept {
  *this = std::move(other);
}

TypedParams& TypedParams::operator=(TypedParams&& other) noexcept {
  if (this == &other) return *this;
  release();
  m_params = other.m_params;
  m_count = other.m_count;
  m_capacity = other.m_capacity;
  other.m_params = nullptr;
  other.m_count = 0;
  other.m_capacity = 0;
  return *this;
}

TypedParams::~TypedParams() {
  release();
}

void TypedParams::release() {
  if (m_params != nullptr) virTypedParamsFree(m_params, m_count);
  m_params = nullptr;
  m_count = 0;
  m_capacity = 0;
}

virTypedParameterPtr* TypedParams::reset_params() {
  release();
  return &m_params;
}

util::Result<void> TypedParams::add_string(const char* name,
                                           const std::string& value) {
  initialize_libvirt();
  if (virTypedParamsAddString(&m_params, &m_count, &m_capacity, name,
                              value.c_str()) < 0) {
    return util::Error{std::string("Failed to set migration parameter ") +
                       name + ": " + last_error_text()};
  }
  return {};
}

util::Result<void> TypedParams::add_ullong(const char* name,
                                           unsigned long long value) {
  initialize_libvirt();
  if (virTypedParamsAddULLong(&m_params, &m_count, &m_capacity, name, value) <
      0) {
    return util::Error{std::string("Failed to set migration parameter ") +
                       name + ": " + last_error_text()};
  }
  return {};
}

util::Result<void> TypedParams::add_int(const char* name, int value) {
  initialize_libvirt();
  if (virTypedParamsAddInt(&m_params, &m_count, &m_capacity, name, value) < 0) {
    return util::Error{std::string("Failed to set migration parameter ") +
                       name + ": " + last_error_text()};
  }
  return {};
}

std::optional<std::uint64_t> TypedParams::get_unsigned(const char* name) const {
  virTypedParameterPtr param = virTypedParamsGet(m_params, m_count, name);
  if (param == nullptr) return std::nullopt;
  switch (param->type) {
    case VIR_TYPED_PARAM_INT:
      if (param->value.i < 0) return std::nullopt;
      return static_cast<std::uint64_t>(param->value.i);
    case VIR_TYPED_PARAM_UINT:
      return param->value.ui;
    case VIR_TYPED_PARAM_LLONG:
      if (param->value.l < 0) return std::nullopt;
      return static_cast<std::uint64_t>(param->value.l);
    case VIR_TYPED_PARAM_ULLONG:
      return param->value.ul;
    default:
      return std::nullopt;
  }
}

std::optional<std::string> TypedParams::get_string(const char* name) const {
  virTypedParameterPtr param = virTypedParamsGet(m_params, m_count, name);
  if (param == nullptr || param->type != VIR_TYPED_PARAM_STRING ||
      param->value.s == nullptr) {
    return std::nullopt;
  }
  return std::string(param->value.s);
}

std::optional<bool> TypedParams::get_boolean(const char* name) const {
  virTypedParameterPtr param = virTypedParamsGet(m_params, m_count, name);
  if (param == nullptr || param->type != VIR_TYPED_PARAM_BOOLEAN) {
    return std::nullopt;
  }
  return param->value.b != 0;
}

util::Result<DomainPtr> find_domain(virConnectPtr connection,
                                    const std::string& name,
                                    const std::string& uri) {
  virDomainPtr domain = virDomainLookupByName(connection, name.c_str());
  if (domain == nullptr) {
    return util::Error{"Domain " + name + " not found at " + uri + ": " +
                       last_error_text()};
  }
  return DomainPtr(domain, virDomainFree);
}

util::Result<std::string> domain_uuid(virDomainPtr domain) {
  char uuid[VIR_UUID_STRING_BUFLEN];
  if (virDomainGetUUIDString(domain, uuid) < 0) {
    return util::Error{"Failed to read the UUID of domain " +
                       std::string(virDomainGetName(domain)) + ": " +
                       last_error_text()};
  }
  return std::string(uuid);
}

namespace {

// The position and length of the host in `uri`, or npos when it has none.
std::pair<std::size_t, std::size_t> find_uri_host(const std::string& uri) {
  const std::size_t scheme_end = uri.find("://");
  if (scheme_end == std::string::npos) return {std::string::npos, 0};
  std::size_t start = scheme_end + 3;
  const std::size_t authority_end = uri.find_first_of("/?#", start);
  const std::size_t at = uri.rfind('@', authority_end);
  if (at != std::string::npos && at >= start) start = at + 1;
  const std::size_t limit =
      authority_end == std::string::npos ? uri.size() : authority_end;
  if (start < limit && uri[start] == '[') {
    const std::size_t close = uri.find(']', start);
    if (close == std::string::npos || close > limit) {
      return {std::string::npos, 0};
    }
    return {start + 1, close - start - 1};
  }
  std::size_t end = uri.find(':', start);
  if (end == std::string::npos || end > limit) end = limit;
  if (end == start) return {std::string::npos, 0};
  return {start, end - start};
}

}  // namespace

std::string uri_host(const std::string& uri) {
  const auto [start, length] = find_uri_host(uri);
  if (start == std::string::npos) return "";
  return uri.substr(start, length);
}

std::string replace_uri_host(const std::string& uri, const std::string& host) {
  const auto [start, length] = find_uri_host(uri);
  if (start == std::string::npos) return "";
  const bool bracketed = start > 0 && uri[start - 1] == '[';
  const bool needs_brackets = host.find(':') != std::string::npos;
  std::string replacement = host;
  if (needs_brackets && !bracketed) replacement = "[" + host + "]";
  std::string result = uri;
  if (bracketed && !needs_brackets) {
    result.replace(start - 1, length + 2, replacement);
  } else {
    result.replace(start, length, replacement);
  }
  return result;
}

const char* domain_state_name(int state) {
  switch (state) {
    case VIR_DOMAIN_NOSTATE:
      return "no state";
    case VIR_DOMAIN_RUNNING:
      return "running";
    case VIR_DOMAIN_BLOCKED:
      return "idle";
    case VIR_DOMAIN_PAUSED:
      return "paused";
    case VIR_DOMAIN_SHUTDOWN:
      return "in shutdown";
    case VIR_DOMAIN_SHUTOFF:
      return "shut off";
    case VIR_DOMAIN_CRASHED:
      return "crashed";
    case VIR_DOMAIN_PMSUSPENDED:
      return "pmsuspended";
    default:
      return "unknown";
  }
}

util::Result<std::string> domain_state(virConnectPtr connection,
                                       const std::string& uuid) {
  virDomainPtr found = virDomainLookupByUUIDString(connection, uuid.c_str());
  if (found == nullptr) {
    virErrorPtr error = virGetLastError();
    if (error != nullptr && error->code == VIR_ERR_NO_DOMAIN) {
      return std::string("absent");
    }
    return util::Error{"Failed to look up domain " + uuid + ": " +
                       last_error_text()};
  }
  DomainPtr domain(found, virDomainFree);
  int state = 0;
  int reason = 0;
  if (virDomainGetState(domain.get(), &state, &reason, 0) < 0) {
    return util::Error{"Failed to read the state of domain " + uuid + ": " +
                       last_error_text()};
  }
  return std::string(domain_state_name(state));
}

util::Result<std::string> connection_hostname(virConnectPtr connection) {
  std::unique_ptr<char, decltype(&free)> name(virConnectGetHostname(connection),
                                              free);
  if (!name) {
    return util::Error{"Failed to read the libvirt host name: " +
                       last_error_text()};
  }
  return std::string(name.get());
}

util::Result<JobStats> read_job_stats(virDomainPtr domain, bool completed) {
  TypedParams params;
  JobStats stats;
  unsigned int flags = 0;
  if (completed) {
    flags =
        VIR_DOMAIN_JOB_STATS_COMPLETED | VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED;
  }
  if (virDomainGetJobStats(domain, &stats.type, params.reset_params(),
                           params.count_pointer(), flags) < 0) {
    return util::Error{std::string("Failed to read the ") +
                       (completed ? "completed " : "") + "job statistics of " +
                       virDomainGetName(domain) + ": " + last_error_text()};
  }
  stats.time_elapsed_ms = params.get_unsigned(VIR_DOMAIN_JOB_TIME_ELAPSED);
  stats.downtime_ms = params.get_unsigned(VIR_DOMAIN_JOB_DOWNTIME);
  stats.setup_time_ms = params.get_unsigned(VIR_DOMAIN_JOB_SETUP_TIME);
  stats.data_total = params.get_unsigned(VIR_DOMAIN_JOB_DATA_TOTAL);
  stats.data_processed = params.get_unsigned(VIR_DOMAIN_JOB_DATA_PROCESSED);
  stats.data_remaining = params.get_unsigned(VIR_DOMAIN_JOB_DATA_REMAINING);
  stats.memory_total = params.get_unsigned(VIR_DOMAIN_JOB_MEMORY_TOTAL);
  stats.memory_processed = params.get_unsigned(VIR_DOMAIN_JOB_MEMORY_PROCESSED);
  stats.memory_remaining = params.get_unsigned(VIR_DOMAIN_JOB_MEMORY_REMAINING);
  stats.memory_bps = params.get_unsigned(VIR_DOMAIN_JOB_MEMORY_BPS);
  stats.success = params.get_boolean(VIR_DOMAIN_JOB_SUCCESS);
  stats.error_message =
      params.get_string(VIR_DOMAIN_JOB_ERRMSG).value_or(std::string());
  return stats;
}

unsigned int migration_flags(const MigrationRequest& request) {
  unsigned int flags = VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_LIVE;
  if (request.encrypted) flags |= VIR_MIGRATE_TLS;
  if (request.parallel_connections > 1) flags |= VIR_MIGRATE_PARALLEL;
  if (request.unsafe) flags |= VIR_MIGRATE_UNSAFE;
  return flags;
}

util::Result<TypedParams> migration_params(const MigrationRequest& request) {
  TypedParams params;
  util::Result<void> added;
  if (!request.migration_address.empty()) {
    added = params.add_string(VIR_MIGRATE_PARAM_URI, request.migration_address);
    if (!added) return added.error();
  }
  if (request.encrypted && !request.tls_destination.empty()) {
    added = params.add_string(VIR_MIGRATE_PARAM_TLS_DESTINATION,
                              request.tls_destination);
    if (!added) return added.error();
  }
  if (request.bandwidth_mib_s) {
    added = params.add_ullong(VIR_MIGRATE_PARAM_BANDWIDTH,
                              *request.bandwidth_mib_s);
    if (!added) return added.error();
  }
  if (request.parallel_connections > 1) {
    added = params.add_int(VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS,
                           request.parallel_connections);
    if (!added) return added.error();
  }
  return params;
}

MigrationRun run_migration(virDomainPtr domain, const MigrationRequest& request,
                           const ProgressSink& progress, double poll_seconds) {
  MigrationRun run;
  auto params = migration_params(request);
  if (!params) {
    run.error = params.error().message;
    return run;
  }
  const unsigned int flags = migration_flags(request);

  std::mutex mutex;
  std::condition_variable finished_signal;
  bool finished = false;
  bool succeeded = false;
  std::string error;

  const auto start = Clock::now();
  // libvirt connections are thread-safe: the worker blocks in the migration
  // call while this thread polls and, on timeout, aborts the same job.
  std::thread worker([&]() {
    const int result = virDomainMigrateToURI3(
        domain, request.destination_uri.c_str(), params->data(),
        static_cast<unsigned int>(params->size()), flags);
    // libvirt keeps the last error per thread, so read it here.
    std::string text = result < 0 ? last_error_text() : std::string();
    std::lock_guard<std::mutex> lock(mutex);
    succeeded = result == 0;
    error = text;
    finished = true;
    finished_signal.notify_all();
  });

  bool aborted = false;
  // Samples of data_processed over the last second: QEMU updates its
  // counters in bursts, so a rate over one poll interval jumps around.
  std::deque<std::pair<Clock::time_point, std::uint64_t>> samples;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mutex);
      if (finished_signal.wait_for(lock,
                                   std::chrono::duration<double>(poll_seconds),
                                   [&] { return finished; })) {
        break;
      }
    }
    auto stats = read_job_stats(domain, false);
    if (stats && stats->type != VIR_DOMAIN_JOB_NONE) {
      std::optional<double> rate;
      const auto now = Clock::now();
      if (stats->data_processed) {
        while (!samples.empty() &&
               (now - samples.front().first > k_rate_window ||
                samples.front().second > *stats->data_processed)) {
          samples.pop_front();
        }
        if (!samples.empty()) {
          const double interval =
              std::chrono::duration<double>(now - samples.front().first)
                  .count();
          if (interval > 0) {
            rate = static_cast<double>(*stats->data_processed -
                                       samples.front().second) /
                   interval;
          }
        }
        samples.emplace_back(now, *stats->data_processed);
      }
      if (!rate && stats->memory_bps) {
        rate = static_cast<double>(*stats->memory_bps);
      }
      run.last_stats = stats.value();
      if (progress) progress(stats.value(), rate);
    }
    if (!aborted && request.timeout_seconds &&
        seconds_since(start) >= *request.timeout_seconds) {
      run.timed_out = true;
      // Before the job starts (while the daemons connect) there is nothing
      // to abort yet, so a failed abort is retried at the next poll.
      aborted = virDomainAbortJob(domain) == 0;
      run.abort_error = aborted ? std::string() : last_error_text();
    }
  }
  worker.join();
  run.duration_seconds = seconds_since(start);
  run.succeeded = succeeded;
  run.error = error;
  // An abort that came too late to stop the job leaves a finished
  // migration: report what happened, not the timeout.
  if (run.succeeded) run.timed_out = false;
  return run;
}

}  // namespace qmt::virt
