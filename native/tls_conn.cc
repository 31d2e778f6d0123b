// TlsConn: one TLS connection over a socket's fd. OpenSSL reads and writes
// the fd itself through a BIO of ours (recv/send with MSG_NOSIGNAL, EINTR
// retried, each counted as a syscall); an operation that would block returns
// which readiness it waits for -- OpenSSL's WANT_READ / WANT_WRITE -- so the
// loop can wait for it on any backend and call again.
//
//   new TlsConn(context, fd, hostname?, sessionKey?); conn.id() names it below
//   tlsHandshake(conn)           0 done | WANT_READ | WANT_WRITE | FAILED
//   tlsRead(conn, buf, off, len) bytes | 0 (close_notify) | WANT_* | FAILED
//   tlsWrite(conn, buf, off, len) bytes | WANT_* | FAILED
//   tlsShutdown(conn)            1 both sent | 0 ours sent | WANT_* | FAILED
//   tlsHasPending(conn)          true when OpenSSL holds bytes (read ahead or decrypted)
//   conn.failure()  what the last FAILED was: { code, message, errno }
//   conn.info(), conn.peerCertificate(), conn.close()
//
// The connection never closes the fd (its Socket does) and must not touch
// it after the Socket closed it (the number may be another file's by then):
// JavaScript closes the connection first. Each SSL is freed exactly once:
// by close(), or when the object is collected.
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "args.h"
#include "env.h"
#include "errors.h"
#include "raw.h"
#include "syscount.h"
#include "tls.h"

namespace iomux {

namespace {

// What the BIO needs: the fd, and the errno of its last failure (errno
// itself may be overwritten before OpenSSL returns to us).
struct FdBio {
  int fd = -1;
  int err = 0;
  // MSG_DONTWAIT once the loop drives the connection (never block its
  // thread, whatever O_NONBLOCK says -- as the plain try* calls); else 0.
  int flags = 0;
};

int BioWrite(BIO* bio, const char* data, int len) {
  auto* fdb = static_cast<FdBio*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  for (;;) {
    ssize_t n = IOMUX_SYSCALL(::send(fdb->fd, data, static_cast<size_t>(len), MSG_NOSIGNAL | fdb->flags));
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      BIO_set_retry_write(bio);
    } else {
      fdb->err = errno;
    }
    return -1;
  }
}

int BioRead(BIO* bio, char* data, int len) {
  auto* fdb = static_cast<FdBio*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  for (;;) {
    ssize_t n = IOMUX_SYSCALL(::recv(fdb->fd, data, static_cast<size_t>(len), fdb->flags));
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      BIO_set_retry_read(bio);
    } else {
      fdb->err = errno;
    }
    return -1;
  }
}

long BioCtrl(BIO*, int cmd, long, void*) {
  // Writes go straight to the socket: there is nothing to flush.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

// One method table for the process: immutable once made, shared by every
// environment (an OpenSSL BIO_METHOD is not per thread).
const BIO_METHOD* FdBioMethod() {
  static BIO_METHOD* method = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "iomux fd");
    if (method == nullptr) return;
    BIO_meth_set_write(method, BioWrite);
    BIO_meth_set_read(method, BioRead);
    BIO_meth_set_ctrl(method, BioCtrl);
  });
  return method;
}

// A server that asked for a client certificate but does not reject: the
// handshake goes on whatever the verification says (info() reports it).
int AcceptAny(int, X509_STORE_CTX*) { return 1; }

// Client verification, as Node's: the whole chain is checked whatever the
// failures (the result is the last one -- a lone leaf of an unknown CA is
// UNABLE_TO_VERIFY_LEAF_SIGNATURE, as Node reports it), and the verdict is
// taken when the handshake completes (TlsConn::Handshake). node:tls checks
// the name only for a chain that verified: here OpenSSL checks it amid the
// chain's checks, so a mismatch found after a chain failure puts that
// failure back as the store's error, which OpenSSL keeps as the result (and
// in the session) -- a name mismatch must not hide an untrusted chain.
// Keeps the leaf it saw (see TlsConnLink::leaf).
int RecordLeaf(int ok, X509_STORE_CTX* store) {
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* link = ssl == nullptr ? nullptr : static_cast<TlsConnLink*>(SSL_get_ex_data(ssl, TlsConnIndex()));
  if (link == nullptr) return 1;
  if (ok == 0) {
    int error = X509_STORE_CTX_get_error(store);
    if (error != X509_V_ERR_HOSTNAME_MISMATCH && error != X509_V_ERR_IP_ADDRESS_MISMATCH) {
      link->chainError = error;
    } else if (link->chainError != X509_V_OK) {
      X509_STORE_CTX_set_error(store, link->chainError);
    }
  }
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
  X509* cert = X509_STORE_CTX_get_current_cert(store);
  if (cert != nullptr && cert != link->leaf && X509_up_ref(cert) == 1) {
    if (link->leaf != nullptr) X509_free(link->leaf);
    link->leaf = cert;
  }
  return 1;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char addr[16];
  return inet_pton(AF_INET, host.c_str(), addr) == 1 || inet_pton(AF_INET6, host.c_str(), addr) == 1;
}

class TlsConn;

}  // namespace

// The connections by id: what JavaScript passes the hot functions is a
// number, found here with one bounds check -- no object to unwrap and
// type-check per call (those were about 5 % of a small echo's CPU). An id
// is its slot's index and the slot's generation, so an id of a connection
// that is gone matches nothing, even once its slot serves another.
struct TlsConnTable {
  static constexpr uint32_t kIndexBits = 22;
  static constexpr uint32_t kIndexMask = (1u << kIndexBits) - 1;
  struct Slot {
    TlsConn* conn = nullptr;
    uint32_t generation = 0;
  };
  std::vector<Slot> slots = std::vector<Slot>(1);  // index 0 is never used: id 0 is none
  std::vector<uint32_t> free;

  // The connection's id, or 0 when the table is full (4 million connections).
  int32_t Add(TlsConn* conn) {
    uint32_t index;
    if (!free.empty()) {
      index = free.back();
      free.pop_back();
    } else if (slots.size() <= kIndexMask) {
      index = static_cast<uint32_t>(slots.size());
      slots.emplace_back();
    } else {
      return 0;
    }
    slots[index].conn = conn;
    return static_cast<int32_t>((slots[index].generation << kIndexBits) | index);
  }

  void Remove(int32_t id) {
    uint32_t index = static_cast<uint32_t>(id) & kIndexMask;
    if (index == 0 || index >= slots.size()) return;
    slots[index].conn = nullptr;
    // Nine bits of generation keep an id positive (an int32 JavaScript holds as a small integer).
    slots[index].generation = (slots[index].generation + 1) & 0x1ff;
    free.push_back(index);
  }

  TlsConn* Find(int32_t id) const {
    if (id <= 0) return nullptr;
    uint32_t index = static_cast<uint32_t>(id) & kIndexMask;
    if (index >= slots.size()) return nullptr;
    const Slot& slot = slots[index];
    return slot.generation == (static_cast<uint32_t>(id) >> kIndexBits) ? slot.conn : nullptr;
  }
};

namespace {

class TlsConn : public Napi::ObjectWrap<TlsConn> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TlsConn",
                       {InstanceMethod<&TlsConn::FailureJs>("failure"), InstanceMethod<&TlsConn::InfoJs>("info"),
                        InstanceMethod<&TlsConn::PeerCertificateJs>("peerCertificate"),
                        InstanceMethod<&TlsConn::PendingJs>("pending"), InstanceMethod<&TlsConn::CloseJs>("close"),
                        InstanceMethod<&TlsConn::DontWaitJs>("dontWait"), InstanceMethod<&TlsConn::IdJs>("id")});
  }

  explicit TlsConn(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsConn>(info) {
    Napi::Env env = info.Env();
    std::shared_ptr<TlsContextState> state = UnwrapTlsContext(env, info[0]);
    if (state == nullptr) return;
    int fd;
    if (!ArgFd(info, 1, "fd", &fd)) return;
    std::string hostname;
    if (!OptionalString(info, 2, "hostname", &hostname) || !OptionalString(info, 3, "sessionKey", &link_.sessionKey)) {
      return;
    }
    EnvData* data = GetEnvData(env);
    if (data->tlsConns == nullptr) data->tlsConns = std::make_shared<TlsConnTable>();
    table_ = data->tlsConns;
    id_ = table_->Add(this);
    if (id_ == 0) {
      Napi::Error::New(env, "TLS: too many connections (4,194,303) in this environment").ThrowAsJavaScriptException();
      return;
    }
    const BIO_METHOD* method = FdBioMethod();
    SSL* ssl = method == nullptr ? nullptr : SSL_new(state->ctx);
    BIO* bio = ssl == nullptr ? nullptr : BIO_new(method);
    if (bio == nullptr) {
      if (ssl != nullptr) SSL_free(ssl);
      ERR_clear_error();
      Napi::Error::New(env, "TLS: out of memory making a connection").ThrowAsJavaScriptException();
      return;
    }
    bio_.fd = fd;
    BIO_set_data(bio, &bio_);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio);
    link_.state = state;
    SSL_set_ex_data(ssl, TlsConnIndex(), &link_);
    if (state->server) {
      SSL_set_accept_state(ssl);
      if (state->requestCert) {
        SSL_set_verify(ssl, state->reject ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER,
                       state->reject ? nullptr : AcceptAny);
      }
    } else {
      SSL_set_connect_state(ssl);
      // The chain and the name are always checked; info() reports the
      // result, and with rejectUnauthorized the handshake fails on it.
      SSL_set_verify(ssl, SSL_VERIFY_PEER, RecordLeaf);
      // A fully qualified name's trailing dot is no part of it: node:tls
      // checks the name without it, and SNI carries none (RFC 6066 3).
      if (hostname.size() > 1 && hostname.back() == '.' && hostname[hostname.size() - 2] != '.') hostname.pop_back();
      if (!hostname.empty()) {
        bool ok;
        if (IsIpLiteral(hostname)) {
          // An address is checked against the IP names; it is no SNI name (RFC 6066).
          ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), hostname.c_str()) == 1;
        } else {
          SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
          ok = SSL_set_tlsext_host_name(ssl, hostname.c_str()) == 1 && SSL_set1_host(ssl, hostname.c_str()) == 1;
        }
        if (!ok) {
          SSL_free(ssl);
          ERR_clear_error();
          ThrowValueError(env, "The \"hostname\" argument is not a host name or address OpenSSL accepts. Received '" +
                                   hostname + "'");
          return;
        }
      }
      if (!link_.sessionKey.empty()) {
        // A resumed session skips verification: its result is the one the
        // session was made with, against the name it was made for. Keyed by
        // the name too, a session never answers for another name (whatever
        // key the caller chose).
        link_.sessionKey = hostname + std::string(1, '\0') + link_.sessionKey;
        SSL_SESSION* session = state->FindSession(link_.sessionKey);
        if (session != nullptr) SSL_set_session(ssl, session);
      }
    }
    ssl_ = ssl;
  }

  ~TlsConn() override {
    Free();
    if (id_ != 0) table_->Remove(id_);
  }

  // The operations: a count, or kTlsWant* / kTlsFailed.
  int Handshake() {
    if (ssl_ == nullptr) return Closed();
    Begin();
    if (rejected_) return kTlsFailed;
    int rc = SSL_do_handshake(ssl_);
    if (rc == 1) {
      handshaking_ = false;
      long verify = link_.state->server ? X509_V_OK : SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK && link_.state->reject) {
        // The peer is not who it should be: nothing more goes through.
        rejected_ = true;
        DescribeVerifyFailure(verify, &failure_);
        return kTlsFailed;
      }
      return 0;
    }
    return Failed(rc);
  }

  int Read(uint8_t* data, size_t length) {
    if (ssl_ == nullptr) return Closed();
    if (rejected_) return kTlsFailed;
    if (length == 0) return 0;
    // SSL_read would shake hands on its own, past the verdict Handshake()
    // gives on the peer's certificate: the handshake goes through it first.
    if (handshaking_) {
      int rc = Handshake();
      if (rc != 0) return rc;
    }
    Begin();
    int rc = SSL_read(ssl_, data, length > INT32_MAX ? INT32_MAX : static_cast<int>(length));
    if (rc > 0) return rc;
    if (SSL_get_error(ssl_, rc) == SSL_ERROR_ZERO_RETURN) return 0;
    return Failed(rc);
  }

  int Write(const uint8_t* data, size_t length) {
    if (ssl_ == nullptr) return Closed();
    if (rejected_) return kTlsFailed;
    if (length == 0) return 0;
    if (handshaking_) {  // as in Read
      int rc = Handshake();
      if (rc != 0) return rc;
    }
    Begin();
    int rc = SSL_write(ssl_, data, length > INT32_MAX ? INT32_MAX : static_cast<int>(length));
    if (rc > 0) return rc;
    return Failed(rc);
  }

  // Bytes OpenSSL holds, decrypted or not yet: a receive gets them without the socket being readable.
  bool HasPending() const { return ssl_ != nullptr && SSL_has_pending(ssl_) == 1; }

  int Shutdown() {
    if (ssl_ == nullptr) return Closed();
    Begin();
    int rc = SSL_shutdown(ssl_);
    if (rc >= 0) return rc;
    return Failed(rc);
  }

 private:
  // A string argument, or "" when undefined or null.
  static bool OptionalString(const Napi::CallbackInfo& info, size_t index, const char* name, std::string* out) {
    Napi::Value v = info[index];
    if (v.IsUndefined() || v.IsNull()) return true;
    if (!v.IsString()) {
      ThrowTypeError(info.Env(), std::string("The \"") + name + "\" argument must be a string. Received " +
                                     DescribeValue(v));
      return false;
    }
    *out = v.As<Napi::String>().Utf8Value();
    return true;
  }

  // OpenSSL's SSL_get_error reads the thread's error queue: it must hold
  // only what this call leaves.
  void Begin() {
    ERR_clear_error();
    bio_.err = 0;
  }

  int Failed(int rc) {
    int error = SSL_get_error(ssl_, rc);
    if (error == SSL_ERROR_WANT_READ) return kTlsWantRead;
    if (error == SSL_ERROR_WANT_WRITE) return kTlsWantWrite;
    DescribeTlsFailure(ssl_, error, bio_.err, handshaking_, &failure_);
    return kTlsFailed;
  }

  int Closed() {
    failure_.code.clear();
    failure_.message.clear();
    failure_.sysErrno = EBADF;
    return kTlsFailed;
  }

  void Free() {
    if (ssl_ == nullptr) return;
    SSL_free(ssl_);
    ssl_ = nullptr;
  }

  Napi::Value FailureJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    result.Set("code", Napi::String::New(env, failure_.code));
    result.Set("message", Napi::String::New(env, failure_.message));
    result.Set("errno", Napi::Number::New(env, failure_.sysErrno));
    return result;
  }

  Napi::Value InfoJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (ssl_ == nullptr) return env.Null();
    Napi::Object result = Napi::Object::New(env);
    result.Set("protocol", Napi::String::New(env, SSL_get_version(ssl_)));
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
    result.Set("cipher", cipher == nullptr ? env.Null() : Napi::String::New(env, SSL_CIPHER_get_name(cipher)));
    const unsigned char* alpn = nullptr;
    unsigned int alpnLength = 0;
    SSL_get0_alpn_selected(ssl_, &alpn, &alpnLength);
    result.Set("alpn", alpnLength == 0 ? env.Null()
                                       : Napi::String::New(env, reinterpret_cast<const char*>(alpn), alpnLength));
    X509* peer = SSL_get0_peer_certificate(ssl_);
    long verify = SSL_get_verify_result(ssl_);
    // No certificate at all is not "verified" (Node reports the same code).
    if (peer == nullptr) verify = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT;
    result.Set("verifyError", verify == X509_V_OK ? env.Null() : Napi::String::New(env, TlsVerifyErrorCode(verify)));
    result.Set("verifyMessage",
               verify == X509_V_OK ? env.Null() : Napi::String::New(env, X509_verify_cert_error_string(verify)));
    result.Set("sessionReused", Napi::Boolean::New(env, SSL_session_reused(ssl_) == 1));
    const char* servername = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
    result.Set("servername", servername == nullptr ? env.Null() : Napi::String::New(env, servername));
    return result;
  }

  Napi::Value PeerCertificateJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    X509* peer = ssl_ == nullptr ? nullptr : SSL_get0_peer_certificate(ssl_);
    if (peer == nullptr && ssl_ != nullptr) peer = link_.leaf;
    if (peer == nullptr) return env.Null();
    int length = i2d_X509(peer, nullptr);
    if (length <= 0) return env.Null();
    Napi::Buffer<uint8_t> der = Napi::Buffer<uint8_t>::New(env, static_cast<size_t>(length));
    uint8_t* out = der.Data();
    i2d_X509(peer, &out);
    return der;
  }

  Napi::Value PendingJs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), ssl_ == nullptr ? 0 : SSL_pending(ssl_));
  }

  Napi::Value DontWaitJs(const Napi::CallbackInfo& info) {
    bio_.flags = MSG_DONTWAIT;
    return info.Env().Undefined();
  }

  Napi::Value IdJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), id_); }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Free();
    return info.Env().Undefined();
  }

  SSL* ssl_ = nullptr;
  // Its entry in the environment's table (0: none, the constructor failed first).
  std::shared_ptr<TlsConnTable> table_;
  int32_t id_ = 0;
  FdBio bio_;
  TlsConnLink link_;
  bool handshaking_ = true;
  // The handshake completed with a peer that failed verification.
  bool rejected_ = false;
  TlsFailure failure_;
};

// The TlsConn whose id `value` is, or null with a TypeError pending (for
// anything else: a number that is no integer, the id of a connection gone).
TlsConn* UnwrapConn(napi_env env, napi_value value) {
  int32_t id = 0;
  napi_valuetype type = napi_undefined;
  if (value != nullptr) napi_typeof(env, value, &type);
  double number = 0;
  if (type == napi_number && napi_get_value_double(env, value, &number) == napi_ok && number >= 1 &&
      number <= INT32_MAX && number == static_cast<double>(static_cast<int32_t>(number))) {
    id = static_cast<int32_t>(number);
  }
  EnvData* data = GetEnvData(env);
  TlsConn* conn = data->tlsConns == nullptr ? nullptr : data->tlsConns->Find(id);
  if (conn == nullptr) {
    ThrowTypeError(Napi::Env(env), "The \"conn\" argument must be the id of a TlsConn. Received " +
                                       DescribeValue(Napi::Value(env, value == nullptr ? Napi::Env(env).Undefined()
                                                                                      : value)));
  }
  return conn;
}

napi_value HandshakeJs(napi_env env, napi_callback_info info) {
  RawArgs<1> args;
  if (!args.Read(env, info)) return nullptr;
  TlsConn* conn = UnwrapConn(env, args.argv[0]);
  if (conn == nullptr) return nullptr;
  return RawInt32(env, conn->Handshake());
}

napi_value HasPendingJs(napi_env env, napi_callback_info info) {
  RawArgs<1> args;
  if (!args.Read(env, info)) return nullptr;
  TlsConn* conn = UnwrapConn(env, args.argv[0]);
  if (conn == nullptr) return nullptr;
  napi_value result;
  napi_get_boolean(env, conn->HasPending(), &result);
  return result;
}

napi_value ShutdownJs(napi_env env, napi_callback_info info) {
  RawArgs<1> args;
  if (!args.Read(env, info)) return nullptr;
  TlsConn* conn = UnwrapConn(env, args.argv[0]);
  if (conn == nullptr) return nullptr;
  return RawInt32(env, conn->Shutdown());
}

template <bool kWrite>
napi_value MoveJs(napi_env env, napi_callback_info info) {
  RawArgs<4> args;
  if (!args.Read(env, info)) return nullptr;
  TlsConn* conn = UnwrapConn(env, args.argv[0]);
  if (conn == nullptr) return nullptr;
  ByteRange range;
  if (!ValueByteRange(env, args.At(env, 1), args.argv[2], args.argv[3], &range)) return nullptr;
  return RawInt32(env, kWrite ? conn->Write(range.data, range.length) : conn->Read(range.data, range.length));
}

}  // namespace

int TlsConnIndex() {
  static int index = -1;
  static std::once_flag once;
  std::call_once(once, [] { index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr); });
  return index;
}

void InitTlsConn(Napi::Env env, Napi::Object exports) {
  exports.Set("TlsConn", TlsConn::Define(env));
  SetRawFunction(env, exports, "tlsHandshake", HandshakeJs);
  SetRawFunction(env, exports, "tlsShutdown", ShutdownJs);
  SetRawFunction(env, exports, "tlsHasPending", HasPendingJs);
  SetRawFunction(env, exports, "tlsRead", MoveJs<false>);
  SetRawFunction(env, exports, "tlsWrite", MoveJs<true>);
  Napi::Object constants = Napi::Object::New(env);
  constants.Set("WANT_READ", kTlsWantRead);
  constants.Set("WANT_WRITE", kTlsWantWrite);
  constants.Set("FAILED", kTlsFailed);
  exports.Set("tlsResults", constants);
}

}  // namespace iomux
