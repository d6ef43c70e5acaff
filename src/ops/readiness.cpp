#include "ops/readiness.hpp"

namespace qmt::ops {

OptionSpecs readiness_options() { return {}; }

util::Checks readiness_checks(const ReadinessInput&, const Context&,
                              nlohmann::json&) {
  return {};
}

}  // namespace qmt::ops
