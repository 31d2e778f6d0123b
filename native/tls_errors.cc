// What a failed TLS operation means, in Node's words: verification failures
// by the X509_V_ERR_ name Node gives them (CERT_HAS_EXPIRED,
// DEPTH_ZERO_SELF_SIGNED_CERT...; a hostname mismatch is
// ERR_TLS_CERT_ALTNAME_INVALID), protocol failures as ERR_SSL_<reason>
// (ERR_SSL_WRONG_VERSION_NUMBER), and the peer vanishing mid-handshake as
// ECONNRESET -- so code written against node:tls reads the same codes.
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>

#include "tls.h"

namespace iomux {

// The verification errors Node names (crypto_common.cc's table), by number.
const char* TlsVerifyErrorCode(long err) {
  switch (err) {
#define IOMUX_V(name) \
  case X509_V_ERR_##name: return #name;
    IOMUX_V(UNABLE_TO_GET_ISSUER_CERT)
    IOMUX_V(UNABLE_TO_GET_CRL)
    IOMUX_V(UNABLE_TO_DECRYPT_CERT_SIGNATURE)
    IOMUX_V(UNABLE_TO_DECRYPT_CRL_SIGNATURE)
    IOMUX_V(UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY)
    IOMUX_V(CERT_SIGNATURE_FAILURE)
    IOMUX_V(CRL_SIGNATURE_FAILURE)
    IOMUX_V(CERT_NOT_YET_VALID)
    IOMUX_V(CERT_HAS_EXPIRED)
    IOMUX_V(CRL_NOT_YET_VALID)
    IOMUX_V(CRL_HAS_EXPIRED)
    IOMUX_V(ERROR_IN_CERT_NOT_BEFORE_FIELD)
    IOMUX_V(ERROR_IN_CERT_NOT_AFTER_FIELD)
    IOMUX_V(ERROR_IN_CRL_LAST_UPDATE_FIELD)
    IOMUX_V(ERROR_IN_CRL_NEXT_UPDATE_FIELD)
    IOMUX_V(OUT_OF_MEM)
    IOMUX_V(DEPTH_ZERO_SELF_SIGNED_CERT)
    IOMUX_V(SELF_SIGNED_CERT_IN_CHAIN)
    IOMUX_V(UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
    IOMUX_V(UNABLE_TO_VERIFY_LEAF_SIGNATURE)
    IOMUX_V(CERT_CHAIN_TOO_LONG)
    IOMUX_V(CERT_REVOKED)
    IOMUX_V(INVALID_CA)
    IOMUX_V(PATH_LENGTH_EXCEEDED)
    IOMUX_V(INVALID_PURPOSE)
    IOMUX_V(CERT_UNTRUSTED)
    IOMUX_V(CERT_REJECTED)
#undef IOMUX_V
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return "ERR_TLS_CERT_ALTNAME_INVALID";
    default:
      return "UNSPECIFIED";
  }
}

namespace {

// "wrong version number" -> "WRONG_VERSION_NUMBER".
std::string Upper(const char* text) {
  std::string out;
  for (const char* p = text; *p != '\0'; p++) {
    unsigned char c = static_cast<unsigned char>(*p);
    out.push_back(std::isalnum(c) != 0 ? static_cast<char>(std::toupper(c)) : '_');
  }
  return out;
}

void PeerVanished(bool handshaking, TlsFailure* out) {
  if (handshaking) {
    // Node's words and code for the same event.
    out->code = "ECONNRESET";
    out->message = "Client network socket disconnected before secure TLS connection was established";
  } else {
    out->code = "ERR_SSL_UNEXPECTED_EOF_WHILE_READING";
    out->message = "the peer closed the connection without a TLS close_notify: what came may be truncated";
  }
}

}  // namespace

void TakeOpenSslError(std::string* code, std::string* message) {
  unsigned long err = ERR_peek_last_error();
  ERR_clear_error();
  const char* reason = err == 0 ? nullptr : ERR_reason_error_string(err);
  if (reason == nullptr) {
    *code = "ERR_OSSL_UNKNOWN";
    *message = "OpenSSL failed without saying why";
    return;
  }
  *code = "ERR_OSSL_" + Upper(reason);
  *message = reason;
}

void DescribeVerifyFailure(long verify, TlsFailure* out) {
  out->sysErrno = 0;
  out->code = TlsVerifyErrorCode(verify);
  if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    // JavaScript adds the host and the certificate's names (it knows both).
    out->message = "Hostname/IP does not match certificate's altnames";
  } else {
    out->message = X509_verify_cert_error_string(verify);
  }
}

void DescribeTlsFailure(SSL* ssl, int sslError, int savedErrno, bool handshaking, TlsFailure* out) {
  out->sysErrno = 0;
  if (sslError == SSL_ERROR_SYSCALL) {
    ERR_clear_error();
    if (savedErrno != 0) {
      out->sysErrno = savedErrno;
      out->code.clear();
      out->message.clear();
    } else {
      PeerVanished(handshaking, out);
    }
    return;
  }
  if (sslError != SSL_ERROR_SSL) {
    ERR_clear_error();
    out->code = "ERR_SSL_ERROR_" + std::to_string(sslError);
    out->message = "TLS operation failed (SSL_get_error " + std::to_string(sslError) + ")";
    return;
  }
  unsigned long err = ERR_peek_last_error();
  ERR_clear_error();
  int reason = ERR_GET_REASON(err);
  if (ERR_GET_LIB(err) == ERR_LIB_SSL && reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    DescribeVerifyFailure(SSL_get_verify_result(ssl), out);
    return;
  }
  if (ERR_GET_LIB(err) == ERR_LIB_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    PeerVanished(handshaking, out);
    return;
  }
  const char* text = err == 0 ? nullptr : ERR_reason_error_string(err);
  if (text == nullptr) {
    out->code = "ERR_SSL_UNKNOWN";
    out->message = "TLS protocol error";
    return;
  }
  out->code = "ERR_SSL_" + Upper(text);
  out->message = text;
}

}  // namespace iomux
