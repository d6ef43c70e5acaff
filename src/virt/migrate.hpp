#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "util/result.hpp"
#include "virt/libvirt.hpp"

namespace qmt::virt {

// Owns a libvirt typed parameter list (virTypedParamsFree on destruction).
class TypedParams {
 public:
  TypedParams() = default;
  TypedParams(TypedParams&& other) noexcept;
  TypedParams& operator=(TypedParams&& other) noexcept;
  TypedParams(const TypedParams&) = delete;
  TypedParams& operator=(const TypedParams&) = delete;
  ~TypedParams();

  // Adds a parameter; errors name the parameter and libvirt's message.
  util::Result<void> add_string(const char* name, const std::string& value);
  util::Result<void> add_ullong(const char* name, unsigned long long value);
  util::Result<void> add_int(const char* name, int value);

  // Reads a parameter of any integer type, a string or a boolean; nullopt
  // when absent or of another type.
  std::optional<std::uint64_t> get_unsigned(const char* name) const;
  std::optional<std::string> get_string(const char* name) const;
  std::optional<bool> get_boolean(const char* name) const;

  virTypedParameterPtr data() const { return m_params; }
  int size() const { return m_count; }

  // For libvirt calls that allocate a list: frees the current one, then
  // returns pointers libvirt fills in.
  virTypedParameterPtr* reset_params();
  int* count_pointer() { return &m_count; }

 private:
  void release();

  virTypedParameterPtr m_params = nullptr;
  int m_count = 0;
  int m_capacity = 0;  // kept for virTypedParamsAdd*, which may grow it
};

// Looks a domain up by name; the error names the domain and the URI.
util::Result<DomainPtr> find_domain(virConnectPtr connection,
                                    const std::string& name,
                                    const std::string& uri);

// Returns the domain's UUID as text.
util::Result<std::string> domain_uuid(virDomainPtr domain);

// Returns the domain's state in virsh's words ("running", "paused",
// "shut off", ...), or "absent" when the connection has no domain with this
// UUID. Other failures are errors.
util::Result<std::string> domain_state(virConnectPtr connection,
                                       const std::string& uuid);

// Returns the state name for a virDomainState value.
const char* domain_state_name(int state);

// The host name a connection's daemon reports (virConnectGetHostname).
util::Result<std::string> connection_hostname(virConnectPtr connection);

// Returns the host part of a libvirt or migration URI
// ("qemu+tcp://root@h2.lab.test:16509/system" gives "h2.lab.test",
// "tcp://[fd00::2]:49152" gives "fd00::2"), or "" when there is none.
std::string uri_host(const std::string& uri);

// Returns `uri` with its host replaced by `host`, keeping the scheme, user,
// port, path and query; "" when `uri` has no host.
std::string replace_uri_host(const std::string& uri, const std::string& host);

// Statistics of a migration job, from virDomainGetJobStats. Byte counts
// are bytes and times milliseconds, as libvirt reports them.
struct JobStats {
  int type = VIR_DOMAIN_JOB_NONE;
  std::optional<std::uint64_t> time_elapsed_ms;
  std::optional<std::uint64_t> downtime_ms;
  std::optional<std::uint64_t> setup_time_ms;
  std::optional<std::uint64_t> data_total;
  std::optional<std::uint64_t> data_processed;
  std::optional<std::uint64_t> data_remaining;
  std::optional<std::uint64_t> memory_total;
  std::optional<std::uint64_t> memory_processed;
  std::optional<std::uint64_t> memory_remaining;
  std::optional<std::uint64_t> memory_bps;
  std::optional<bool> success;
  std::string error_message;  // VIR_DOMAIN_JOB_ERRMSG of a failed job
};

// Reads the current job's statistics, or with `completed` those of the
// last completed job (kept for other readers). libvirt 9.0 keeps a failed
// job's error message there (VIR_DOMAIN_JOB_ERRMSG).
util::Result<JobStats> read_job_stats(virDomainPtr domain, bool completed);

// One migration, as virDomainMigrateToURI3 with VIR_MIGRATE_PEER2PEER |
// VIR_MIGRATE_LIVE takes it.
struct MigrationRequest {
  std::string destination_uri;    // dconnuri: as the source daemon reaches it
  std::string migration_address;  // VIR_MIGRATE_PARAM_URI, empty: default
  std::string tls_destination;    // VIR_MIGRATE_PARAM_TLS_DESTINATION
  bool encrypted = false;         // VIR_MIGRATE_TLS
  std::optional<unsigned long long> bandwidth_mib_s;
  int parallel_connections = 1;           // 2 or more: VIR_MIGRATE_PARALLEL
  bool unsafe = false;                    // VIR_MIGRATE_UNSAFE
  std::optional<double> timeout_seconds;  // then virDomainAbortJob
};

// Returns the virDomainMigrateFlags for `request`.
unsigned int migration_flags(const MigrationRequest& request);

// Builds the typed parameters for `request`: the URI, TLS destination,
// bandwidth and parallel connections that are set. tls_destination is
// passed only for an encrypted migration.
util::Result<TypedParams> migration_params(const MigrationRequest& request);

// Outcome of one migration call.
struct MigrationRun {
  bool succeeded = false;
  bool timed_out = false;       // the timeout passed and the job was aborted
  std::string error;            // libvirt's error for the migration call
  std::string abort_error;      // virDomainAbortJob's error, if it failed
  double duration_seconds = 0;  // wall-clock time of the call
  std::optional<JobStats> last_stats;  // the last progress poll
};

// Receives job statistics during a migration, and the transfer rate since
// the previous poll in bytes per second when known.
using ProgressSink =
    std::function<void(const JobStats& stats, std::optional<double> rate)>;

// Runs the migration in a worker thread and polls the job every
// `poll_seconds` from the calling thread, passing each poll to `progress`.
// When timeout_seconds passes, aborts the job with virDomainAbortJob and
// waits for the migration call to return.
MigrationRun run_migration(virDomainPtr domain, const MigrationRequest& request,
                           const ProgressSink& progress,
                           double poll_seconds = 0.25);

}  // namespace qmt::virt
