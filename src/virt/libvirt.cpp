#include "virt/libvirt.hpp"

namespace qmt::virt {

std::string last_error_text() {
  const char* message = virGetLastErrorMessage();
  if (message == nullptr || std::string(message) == "no error") {
    return "unknown libvirt error";
  }
  return message;
}

}  // namespace qmt::virt
