// TLS over a non-blocking socket, with OpenSSL 3 as the Node binary exports
// it (its headers ship with Node: no new dependency). What the context and
// the connection share; each half lives in its own file:
//   tls_context.cc  SSL_CTX: roots or `ca`, certificate and key, versions,
//                   ALPN, the client's session cache
//   tls_conn.cc     SSL per connection over the socket's fd (a BIO of ours:
//                   recv/send with MSG_NOSIGNAL, counted), handshake, read,
//                   write, shutdown -- each returning a count or a "want"
//   tls_errors.cc   what went wrong, named as Node names it
#pragma once

#include <napi.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace iomux {

// What an operation returns besides a count (the JS side has the same numbers).
constexpr int kTlsWantRead = -1;   // wait until the socket is readable, then call again
constexpr int kTlsWantWrite = -2;  // wait until it is writable, then call again
constexpr int kTlsFailed = -3;     // failure() says what happened

// A context's state, shared (by shared_ptr) with its connections: a
// connection may outlive its context's JavaScript object, and OpenSSL calls
// back into the session cache from the connection's handshake.
struct TlsContextState {
  SSL_CTX* ctx = nullptr;
  bool server = false;
  // Fail the handshake when the peer's certificate does not verify
  // (rejectUnauthorized); otherwise the result is only reported.
  bool reject = true;
  // Server: ask for a client certificate.
  bool requestCert = false;
  // Server: the protocols it offers for ALPN, in wire format, preferred first.
  std::vector<unsigned char> alpn;
  // Client: sessions to resume, by the key the connection was made with
  // (host and port), newest kept; at most kMaxSessions (Node's agent keeps 100).
  std::unordered_map<std::string, SSL_SESSION*> sessions;
  std::deque<std::string> sessionOrder;
  static constexpr size_t kMaxSessions = 100;

  TlsContextState() = default;
  TlsContextState(const TlsContextState&) = delete;
  TlsContextState& operator=(const TlsContextState&) = delete;
  ~TlsContextState();

  // Takes ownership of one reference to `session`.
  void StoreSession(const std::string& key, SSL_SESSION* session);
  // Borrowed; null when none.
  SSL_SESSION* FindSession(const std::string& key) const;
};

// What a connection's SSL carries in its ex_data: the context state it was
// made from and the key its session is cached under (client; empty: none).
struct TlsConnLink {
  std::shared_ptr<TlsContextState> state;
  std::string sessionKey;
  // The peer's certificate as verification saw it (client): what a failed
  // handshake leaves to name in its error, when OpenSSL keeps no peer.
  X509* leaf = nullptr;
  // The last failure of the chain's verification, the name's aside (client; see RecordLeaf).
  int chainError = X509_V_OK;

  TlsConnLink() = default;
  TlsConnLink(const TlsConnLink&) = delete;
  TlsConnLink& operator=(const TlsConnLink&) = delete;
  ~TlsConnLink() {
    if (leaf != nullptr) X509_free(leaf);
  }
};

// The state of a TlsContext object; null with a TypeError pending when
// `value` is none.
std::shared_ptr<TlsContextState> UnwrapTlsContext(Napi::Env env, Napi::Value value);

// What a failed operation left: an OpenSSL or verification error (code,
// message), or a kernel error (sysErrno, for JavaScript's OSError).
struct TlsFailure {
  std::string code;
  std::string message;
  int sysErrno = 0;
};

// Names the failure of an SSL call whose SSL_get_error was `sslError`, from
// OpenSSL's error queue (cleared here), the verification result and the
// errno the fd BIO saved. `handshaking`: before the handshake completed.
void DescribeTlsFailure(SSL* ssl, int sslError, int savedErrno, bool handshaking, TlsFailure* out);

// A verification result that fails the connection.
void DescribeVerifyFailure(long verify, TlsFailure* out);

// Node's name for a verification result (X509_V_ERR_*), e.g. "CERT_HAS_EXPIRED".
const char* TlsVerifyErrorCode(long result);

// OpenSSL's last queued error as Node names crypto errors ("ERR_OSSL_PEM_NO_START_LINE"),
// and its text; clears the queue.
void TakeOpenSslError(std::string* code, std::string* message);

// The index of the TlsConn pointer in an SSL's ex_data (for the session callback).
int TlsConnIndex();

}  // namespace iomux
