#include "pki/separation.hpp"

#include "pki/certificate.hpp"
#include "pki/openssl.hpp"

namespace qmt::pki {

namespace {

using util::CheckStatus;

// True when `leaf` chains to one of `authorities`. Validity dates are
// ignored: an expired certificate from the wrong CA is still the wrong CA.
bool verifies_against(X509* leaf, const std::vector<X509Ptr>& authorities) {
  X509StorePtr store(X509_STORE_new(), X509_STORE_free);
  if (!store) return false;
  for (const auto& authority : authorities) {
    X509_STORE_add_cert(store.get(), authority.get());
  }
  X509_STORE_set_flags(store.get(), X509_V_FLAG_NO_CHECK_TIME);
  X509StoreCtxPtr context(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  if (!context ||
      X509_STORE_CTX_init(context.get(), store.get(), leaf, nullptr) != 1) {
    return false;
  }
  const bool verified = X509_verify_cert(context.get()) == 1;
  ERR_clear_error();
  return verified;
}

}  // namespace

util::Checks check_separation(const CertificateSet& set,
                              const PemFile& libvirt_ca) {
  util::Checks checks;
  auto libvirt = parse_certificates(libvirt_ca.pem, libvirt_ca.label);
  if (!libvirt) {
    checks.push_back(
        {"separation.libvirt_ca", CheckStatus::warning, libvirt_ca.label,
         "Cannot compare with libvirt's CA: " + libvirt.error().message});
    return checks;
  }

  auto qemu_cas = parse_certificates(set.ca_cert.pem, set.ca_cert.label);
  if (qemu_cas) {
    for (const auto& qemu_ca : qemu_cas.value()) {
      for (const auto& libvirt_cert : libvirt.value()) {
        if (X509_cmp(qemu_ca.get(), libvirt_cert.get()) == 0) {
          checks.push_back(
              {"separation.same_ca", CheckStatus::failed, set.ca_cert.label,
               set.ca_cert.label + " contains libvirt's own CA from " +
                   libvirt_ca.label +
                   "; QEMU certificates must come from a CA used for QEMU "
                   "only, or a QEMU process could connect to libvirtd and "
                   "the management daemon, which trust that CA"});
          return checks;
        }
      }
    }
  }

  auto leaf = parse_certificates(set.server_cert.pem, set.server_cert.label);
  if (!leaf || leaf->empty()) return checks;
  if (verifies_against(leaf->front().get(), libvirt.value())) {
    checks.push_back(
        {"separation.libvirt_ca", CheckStatus::failed, set.server_cert.label,
         set.server_cert.label + " verifies against libvirt's CA " +
             libvirt_ca.label +
             "; a QEMU process, which can read this certificate's key, "
             "could then log in to libvirtd over TLS. Issue QEMU "
             "certificates from a CA used for QEMU only"});
  } else {
    checks.push_back(
        {"separation.libvirt_ca", CheckStatus::ok, set.server_cert.label,
         set.server_cert.label + " does not verify against libvirt's CA " +
             libvirt_ca.label});
  }
  return checks;
}

}  // namespace qmt::pki
