#pragma once
/// \file
/// `corio::tls_context` (asyncio's `ssl.SSLContext`): how TLS sessions are made, for clients
/// (`tls_context::client()`: the system's trust store, chain and host name verification,
/// TLS 1.2 at least) and servers (`tls_context::server(cert, key)`), over OpenSSL 3. Give it to
/// `open_connection` / `start_server` as `.tls = &ctx`, or to `stream_writer::start_tls`.
///
/// Needs OpenSSL (Debian's libssl-dev): link `corio::tls`, which adds `OpenSSL::SSL`.

#include "corio/net/detail/openssl_session.hpp"
#include "corio/net/detail/stream_filter.hpp"
#include "corio/net/detail/stream_transport.hpp"
#include "corio/net/tls_options.hpp"

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

namespace corio {

/// Which peer certificates a context asks for and checks (`tls_context::set_verify`).
enum class tls_verify {
    none,              ///< none asked for; whatever is sent is not checked (`ssl.CERT_NONE`)
    peer,              ///< checked when sent; a server asks clients for one (`ssl.CERT_OPTIONAL`)
    require_peer_cert  ///< one must be sent, and it is checked (`ssl.CERT_REQUIRED`)
};

/// How TLS sessions are made: certificates, trust, verification, ALPN. A cheap handle: copies
/// share one OpenSSL `SSL_CTX` (as Python's contexts are shared objects), so a setting made on
/// one is made on all. Settings apply to the sessions made after them. Errors (a missing or
/// unreadable file, a key that does not match) are `tls_error` with OpenSSL's reason.
class tls_context final : public detail::tls_engine {
public:
    /// A client context (`ssl.create_default_context()`): TLS 1.2 at least, the system's
    /// trusted authorities, the server's chain verified and its certificate checked against
    /// the host name connected to.
    [[nodiscard]] static tls_context client() {
        tls_context context(TLS_client_method(), false);
        SSL_CTX* ctx = context.native_handle();
        if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            throw tls_error(detail::openssl_errors("the system's trusted certificates"));
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        return context;
    }

    /// A server context with the certificate chain at `certificate_path` (PEM, the server's
    /// certificate first) and its private key at `key_path` (PEM). Clients' certificates are
    /// not asked for (see `set_verify`).
    ///
    /// It sends no TLS 1.3 session tickets (no resumption): OpenSSL writes them once the
    /// client's last handshake message is read, and a client that sent its request and closed
    /// by then would answer them with a reset that loses the request. A server that wants
    /// resumption says `SSL_CTX_set_num_tickets(ctx.native_handle(), 2)`.
    [[nodiscard]] static tls_context server(const std::string& certificate_path,
                                            const std::string& key_path) {
        tls_context context(TLS_server_method(), true);
        SSL_CTX* ctx = context.native_handle();
        SSL_CTX_set_num_tickets(ctx, 0);
        ERR_clear_error();
        if (SSL_CTX_use_certificate_chain_file(ctx, certificate_path.c_str()) != 1) {
            throw tls_error(detail::openssl_errors("certificate " + certificate_path));
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
            throw tls_error(detail::openssl_errors("private key " + key_path));
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            throw tls_error(detail::openssl_errors("private key " + key_path +
                                                   " does not match the certificate"));
        }
        return context;
    }

    /// Trusts the authorities in `path`: a PEM file of certificates, or a directory hashed as
    /// `openssl rehash` does (`load_verify_locations(cafile)` / `(capath)`).
    void load_verify_locations(const std::string& path) {
        struct stat st{};
        const bool directory = ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
        ERR_clear_error();
        const int rc = directory ? SSL_CTX_load_verify_dir(native_handle(), path.c_str())
                                 : SSL_CTX_load_verify_file(native_handle(), path.c_str());
        if (rc != 1) throw tls_error(detail::openssl_errors("load_verify_locations " + path));
    }

    /// Which peer certificates are asked for and checked.
    void set_verify(tls_verify mode) noexcept {
        int flags = SSL_VERIFY_NONE;
        if (mode == tls_verify::peer) flags = SSL_VERIFY_PEER;
        if (mode == tls_verify::require_peer_cert) {
            flags = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        }
        SSL_CTX_set_verify(native_handle(), flags, nullptr);
    }

    /// The application protocols, by preference (`set_alpn_protocols(["h2", "http/1.1"])`):
    /// a client offers them, a server picks its first that the client offers (none when the
    /// client offers none of them). `std::invalid_argument` for an empty or over-long name.
    void set_alpn(std::initializer_list<std::string_view> protocols) {
        std::string wire;
        for (const std::string_view protocol : protocols) {
            if (protocol.empty() || protocol.size() > 255) {
                throw std::invalid_argument("set_alpn: a protocol name has 1 to 255 bytes");
            }
            wire += static_cast<char>(protocol.size());
            wire += protocol;
        }
        if (state_->is_server) {
            state_->alpn_wire = std::move(wire);
            SSL_CTX_set_alpn_select_cb(native_handle(), &select_alpn, state_.get());
            return;
        }
        // 0 is success here, unlike the rest of OpenSSL.
        if (SSL_CTX_set_alpn_protos(native_handle(),
                                    reinterpret_cast<const unsigned char*>(wire.data()),
                                    static_cast<unsigned int>(wire.size())) != 0) {
            throw tls_error(detail::openssl_errors("set_alpn"));
        }
    }

    /// Whether the context makes server sessions (`server()`).
    [[nodiscard]] bool is_server() const noexcept { return state_->is_server; }
    /// OpenSSL's context, for settings corio has no call for (cipher lists, session caches).
    [[nodiscard]] SSL_CTX* native_handle() const noexcept { return state_->ctx; }

    [[nodiscard]] detail::owned_ptr<detail::stream_filter>
    make_session(detail::stream_transport& transport,
                 const std::string& server_hostname) const override {
        return detail::owned_ptr<detail::stream_filter>(
            new detail::openssl_session(state_, transport, server_hostname));
    }

private:
    tls_context(const SSL_METHOD* method, bool server) {
        ERR_clear_error();
        SSL_CTX* ctx = SSL_CTX_new(method);
        if (ctx == nullptr) throw tls_error(detail::openssl_errors("SSL_CTX_new"));
        state_ = std::make_shared<detail::tls_context_state>(ctx, server);
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        // No renegotiation (a TLS 1.2 read that would need a write), and an end without
        // close_notify read as the end, as asyncio reads it.
        SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    }

    static int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length,
                           const unsigned char* offered, unsigned int offered_length, void* arg) {
        const auto* state = static_cast<const detail::tls_context_state*>(arg);
        unsigned char* chosen = nullptr;
        const auto* ours = reinterpret_cast<const unsigned char*>(state->alpn_wire.data());
        if (SSL_select_next_proto(&chosen, out_length, ours,
                                  static_cast<unsigned int>(state->alpn_wire.size()), offered,
                                  offered_length) != OPENSSL_NPN_NEGOTIATED) {
            return SSL_TLSEXT_ERR_NOACK;
        }
        *out = chosen;
        return SSL_TLSEXT_ERR_OK;
    }

    std::shared_ptr<detail::tls_context_state> state_;
};

}  // namespace corio
