// TlsContext: one SSL_CTX and what its connections share -- trusted roots
// (Node's bundled ones, handed in as PEM by JavaScript, or the caller's
// `ca`), the certificate and key, the protocol versions, ALPN, and the
// client's session cache (a new connection to the same host and port
// resumes, as node:https's agent does).
//
//   new TlsContext({ server, reject, requestCert, minVersion, maxVersion,
//                    roots, ca, cert, key, alpn })
//
// Types are checked by JavaScript first and again here; PEM that does not
// parse, or a key that is not the certificate's, throws an Error with
// Node's crypto code (ERR_OSSL_PEM_NO_START_LINE,
// ERR_OSSL_KEY_VALUES_MISMATCH...).
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "args.h"
#include "env.h"
#include "errors.h"
#include "tls.h"

namespace iomux {

namespace {

// PEM with a passphrase is refused, never prompted for on the terminal
// (OpenSSL's default callback would read the tty).
int NoPassphrase(char*, int, int, void*) { return -1; }

void ThrowOpenSsl(Napi::Env env, const std::string& what) {
  std::string code;
  std::string message;
  TakeOpenSslError(&code, &message);
  Napi::Error error = Napi::Error::New(env, what + ": " + message);
  error.Set("code", Napi::String::New(env, code));
  error.ThrowAsJavaScriptException();
}

// Reads options[name]: absent/undefined leaves *present false; any other
// type than string throws.
bool OptString(Napi::Env env, Napi::Object options, const char* name, std::string* out, bool* present) {
  Napi::Value v = options.Get(name);
  *present = false;
  if (env.IsExceptionPending()) return false;
  if (v.IsUndefined() || v.IsNull()) return true;
  if (!v.IsString()) {
    ThrowTypeError(env, std::string("The \"") + name + "\" option must be a string. Received " + DescribeValue(v));
    return false;
  }
  *out = v.As<Napi::String>().Utf8Value();
  *present = true;
  return true;
}

bool OptBool(Napi::Env env, Napi::Object options, const char* name, bool fallback, bool* out) {
  Napi::Value v = options.Get(name);
  if (env.IsExceptionPending()) return false;
  if (v.IsUndefined()) {
    *out = fallback;
    return true;
  }
  if (!v.IsBoolean()) {
    ThrowTypeError(env, std::string("The \"") + name + "\" option must be a boolean. Received " + DescribeValue(v));
    return false;
  }
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

bool OptVersion(Napi::Env env, Napi::Object options, const char* name, int* out) {
  Napi::Value v = options.Get(name);
  *out = 0;
  if (env.IsExceptionPending()) return false;
  if (v.IsUndefined()) return true;
  int64_t version;
  if (!ValueInt(env, v, name, 0, TLS1_3_VERSION, &version)) return false;
  if (version != 0 && version != TLS1_VERSION && version != TLS1_1_VERSION && version != TLS1_2_VERSION &&
      version != TLS1_3_VERSION) {
    ThrowRangeError(env, std::string("The \"") + name + "\" option must be a TLS version number. Received " +
                             std::to_string(version));
    return false;
  }
  *out = static_cast<int>(version);
  return true;
}

// Adds every certificate of `pem` to `store`; false (nothing pending) when
// it holds none or one does not parse.
bool AddCertificates(X509_STORE* store, const std::string& pem, int* added) {
  *added = 0;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return false;
  bool ok = true;
  for (;;) {
    X509* cert = PEM_read_bio_X509(bio, nullptr, NoPassphrase, nullptr);
    if (cert == nullptr) {
      // The end of the input is an error in OpenSSL's queue too (no start
      // line): an error only when nothing came before it.
      unsigned long err = ERR_peek_last_error();
      if (*added > 0 && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) ERR_clear_error();
      else ok = false;
      break;
    }
    // A duplicate is no error (X509_STORE_add_cert says so only in old releases).
    X509_STORE_add_cert(store, cert);
    X509_free(cert);
    (*added)++;
  }
  BIO_free(bio);
  return ok && *added > 0;
}

// The certificate (then its chain) and the key; false with an error pending.
bool UseCertificateAndKey(Napi::Env env, SSL_CTX* ctx, const std::string& certPem, const std::string& keyPem) {
  BIO* bio = BIO_new_mem_buf(certPem.data(), static_cast<int>(certPem.size()));
  X509* leaf = bio == nullptr ? nullptr : PEM_read_bio_X509(bio, nullptr, NoPassphrase, nullptr);
  if (leaf == nullptr || SSL_CTX_use_certificate(ctx, leaf) != 1) {
    if (leaf != nullptr) X509_free(leaf);
    BIO_free(bio);
    ThrowOpenSsl(env, "cert");
    return false;
  }
  X509_free(leaf);
  for (;;) {
    X509* extra = PEM_read_bio_X509(bio, nullptr, NoPassphrase, nullptr);
    if (extra == nullptr) {
      // The end of the chain is "no start line"; anything else is a chain
      // certificate that does not parse: an error, as node:tls has it (left
      // out, the chain would fail the peer's verification, far from here).
      unsigned long err = ERR_peek_last_error();
      if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        break;
      }
      BIO_free(bio);
      ThrowOpenSsl(env, "cert");
      return false;
    }
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      BIO_free(bio);
      ThrowOpenSsl(env, "cert");
      return false;
    }
  }
  BIO_free(bio);
  bio = BIO_new_mem_buf(keyPem.data(), static_cast<int>(keyPem.size()));
  EVP_PKEY* key = bio == nullptr ? nullptr : PEM_read_bio_PrivateKey(bio, nullptr, NoPassphrase, nullptr);
  BIO_free(bio);
  if (key == nullptr || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
    if (key != nullptr) EVP_PKEY_free(key);
    ThrowOpenSsl(env, "key");
    return false;
  }
  EVP_PKEY_free(key);
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ThrowOpenSsl(env, "key");
    return false;
  }
  return true;
}

int SelectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
               void* arg) {
  const auto* state = static_cast<const TlsContextState*>(arg);
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, state->alpn.data(), static_cast<unsigned int>(state->alpn.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    // As node:tls since v17: no protocol in common ends the handshake.
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

// A client connection got a session (TLS 1.3: a ticket after the
// handshake): keep it for the next connection to the same host and port.
int NewSession(SSL* ssl, SSL_SESSION* session) {
  auto* link = static_cast<TlsConnLink*>(SSL_get_ex_data(ssl, TlsConnIndex()));
  if (link == nullptr || link->sessionKey.empty() || SSL_SESSION_is_resumable(session) != 1) return 0;
  link->state->StoreSession(link->sessionKey, session);
  return 1;  // we took the reference
}

class TlsContext : public Napi::ObjectWrap<TlsContext> {
 public:
  static Napi::Function Define(Napi::Env env) { return DefineClass(env, "TlsContext", {}); }

  explicit TlsContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TlsContext>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      ThrowTypeError(env, "The \"options\" argument must be an object. Received " +
                              DescribeValue(info.Length() < 1 ? env.Undefined() : info[0]));
      return;
    }
    Napi::Object options = info[0].As<Napi::Object>();
    bool server = false;
    bool reject = true;
    bool requestCert = false;
    int minVersion = 0;
    int maxVersion = 0;
    std::string roots, ca, cert, key;
    bool hasRoots = false, hasCa = false, hasCert = false, hasKey = false;
    if (!OptBool(env, options, "server", false, &server) || !OptBool(env, options, "reject", true, &reject) ||
        !OptBool(env, options, "requestCert", false, &requestCert) ||
        !OptVersion(env, options, "minVersion", &minVersion) || !OptVersion(env, options, "maxVersion", &maxVersion) ||
        !OptString(env, options, "roots", &roots, &hasRoots) || !OptString(env, options, "ca", &ca, &hasCa) ||
        !OptString(env, options, "cert", &cert, &hasCert) || !OptString(env, options, "key", &key, &hasKey)) {
      return;
    }
    if (hasCert != hasKey) {
      ThrowValueError(env, "The \"cert\" and \"key\" options go together: one was given without the other");
      return;
    }
    Napi::Value alpn = options.Get("alpn");
    if (env.IsExceptionPending()) return;
    if (!alpn.IsUndefined() && !alpn.IsBuffer()) {
      ThrowTypeError(env, "The \"alpn\" option must be a Buffer (wire format). Received " + DescribeValue(alpn));
      return;
    }

    auto state = std::make_shared<TlsContextState>();
    state->server = server;
    state->reject = reject;
    state->requestCert = requestCert;
    state->ctx = SSL_CTX_new(TLS_method());
    if (state->ctx == nullptr) {
      ThrowOpenSsl(env, "SSL_CTX_new");
      return;
    }
    SSL_CTX* ctx = state->ctx;
    // Node's defaults: TLS 1.2 and up; no renegotiation (an old attack
    // surface nobody needs); partial writes, so a send can report progress
    // record by record and be retried from where it stopped.
    SSL_CTX_set_min_proto_version(ctx, minVersion != 0 ? minVersion : TLS1_2_VERSION);
    if (maxVersion != 0) SSL_CTX_set_max_proto_version(ctx, maxVersion);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Read ahead: one recv takes what the socket holds (several records, or
    // a record's header and body) instead of a header and then a body --
    // half the receive syscalls. Records read ahead are OpenSSL's, not the
    // kernel's: the loop asks tlsHasPending before it waits for readability.
    SSL_CTX_set_read_ahead(ctx, 1);
    if (server && SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>("iomux"), 5) != 1) {
      ThrowOpenSsl(env, "SSL_CTX_set_session_id_context");
      return;
    }
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    int added = 0;
    if (hasCa && !AddCertificates(store, ca, &added)) {
      ThrowOpenSsl(env, "ca");
      return;
    }
    if (!hasCa && hasRoots && !AddCertificates(store, roots, &added)) {
      ThrowOpenSsl(env, "roots");
      return;
    }
    if (hasCert && !UseCertificateAndKey(env, ctx, cert, key)) return;
    if (alpn.IsBuffer()) {
      Napi::Buffer<unsigned char> wire = alpn.As<Napi::Buffer<unsigned char>>();
      if (server) {
        state->alpn.assign(wire.Data(), wire.Data() + wire.Length());
        SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, state.get());
      } else if (SSL_CTX_set_alpn_protos(ctx, wire.Data(), static_cast<unsigned int>(wire.Length())) != 0) {
        ThrowOpenSsl(env, "alpn");
        return;
      }
    }
    if (!server) {
      // Sessions are kept by host and port in our own cache (OpenSSL's
      // internal one is a server's), handed to the next connection there.
      SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
      SSL_CTX_sess_set_new_cb(ctx, NewSession);
    }
    state_ = std::move(state);
  }

  const std::shared_ptr<TlsContextState>& state() const { return state_; }

 private:
  std::shared_ptr<TlsContextState> state_;
};

}  // namespace

TlsContextState::~TlsContextState() {
  for (auto& entry : sessions) SSL_SESSION_free(entry.second);
  if (ctx != nullptr) SSL_CTX_free(ctx);
}

void TlsContextState::StoreSession(const std::string& key, SSL_SESSION* session) {
  auto found = sessions.find(key);
  if (found != sessions.end()) {
    SSL_SESSION_free(found->second);
    found->second = session;
    return;
  }
  if (sessions.size() >= kMaxSessions) {
    auto oldest = sessions.find(sessionOrder.front());
    if (oldest != sessions.end()) {
      SSL_SESSION_free(oldest->second);
      sessions.erase(oldest);
    }
    sessionOrder.pop_front();
  }
  sessions.emplace(key, session);
  sessionOrder.push_back(key);
}

SSL_SESSION* TlsContextState::FindSession(const std::string& key) const {
  auto found = sessions.find(key);
  return found == sessions.end() ? nullptr : found->second;
}

std::shared_ptr<TlsContextState> UnwrapTlsContext(Napi::Env env, Napi::Value value) {
  EnvData* data = GetEnvData(env);
  bool is = false;
  if (value.IsObject() && !data->tlsContextClass.IsEmpty()) {
    is = value.As<Napi::Object>().InstanceOf(data->tlsContextClass.Value());
    if (env.IsExceptionPending()) return nullptr;
  }
  // instanceof is only the prototype chain (Object.create of the prototype,
  // a Symbol.hasInstance, passes it): the object must also wrap a context.
  void* wrapped = nullptr;
  if (!is || napi_unwrap(env, value, &wrapped) != napi_ok || wrapped == nullptr) {
    ThrowTypeError(env, "The \"context\" argument must be a TlsContext. Received " + DescribeValue(value));
    return nullptr;
  }
  const auto& state = static_cast<TlsContext*>(static_cast<Napi::ObjectWrap<TlsContext>*>(wrapped))->state();
  if (state == nullptr) {
    ThrowValueError(env, "The \"context\" argument is a TlsContext whose construction failed");
    return nullptr;
  }
  return state;
}

void InitTlsContext(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = TlsContext::Define(env);
  GetEnvData(env)->tlsContextClass = Napi::Persistent(ctor);
  exports.Set("TlsContext", ctor);
}

}  // namespace iomux
