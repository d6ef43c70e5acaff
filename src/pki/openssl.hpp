#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

namespace qmt::pki {

// Owners for the OpenSSL handles this layer uses. No code frees one by hand.
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free_all)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using X509ReqPtr = std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)>;
using X509StorePtr = std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)>;
using X509StoreCtxPtr =
    std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using EvpPkeyCtxPtr =
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
using X509ExtensionPtr =
    std::unique_ptr<X509_EXTENSION, decltype(&X509_EXTENSION_free)>;
using GeneralNamesPtr =
    std::unique_ptr<GENERAL_NAMES, decltype(&GENERAL_NAMES_free)>;
using BasicConstraintsPtr =
    std::unique_ptr<BASIC_CONSTRAINTS, decltype(&BASIC_CONSTRAINTS_free)>;
using ExtendedKeyUsagePtr =
    std::unique_ptr<EXTENDED_KEY_USAGE, decltype(&EXTENDED_KEY_USAGE_free)>;
using Asn1IntegerPtr =
    std::unique_ptr<ASN1_INTEGER, decltype(&ASN1_INTEGER_free)>;
using BignumPtr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;

// Drains OpenSSL's error queue into one line ("error:...: reason; ...").
// Returns "unknown OpenSSL error" when the queue is empty.
std::string openssl_error_text();

}  // namespace qmt::pki
