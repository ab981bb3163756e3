#pragma once
/// \file
/// `detail::openssl_session`: one TLS session (an OpenSSL `SSL`) as a stream's filter. OpenSSL
/// reads and writes through a BIO of corio's own: what it writes goes straight to the
/// transport's write path (sent at once when the socket takes it, else buffered, so `drain()`
/// counts encrypted bytes), and it reads from the bytes the transport received. Neither side
/// of the BIO ever blocks, so OpenSSL never asks to be called again for a write: a read that
/// needs to write (a TLS 1.3 key update's answer) writes as it reads, and a handshake step
/// that needs input is answered by receiving more.

#include "corio/net/detail/read_buffer.hpp"
#include "corio/net/detail/stream_filter.hpp"
#include "corio/net/detail/stream_transport.hpp"
#include "corio/net/tls_options.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace corio::detail {

/// What every session of one `tls_context` shares: the `SSL_CTX`, and its server's ALPN list.
struct tls_context_state {
    tls_context_state(SSL_CTX* context, bool server) noexcept : ctx(context), is_server(server) {}
    tls_context_state(const tls_context_state&) = delete;
    tls_context_state& operator=(const tls_context_state&) = delete;
    ~tls_context_state() { SSL_CTX_free(ctx); }

    SSL_CTX* ctx;
    bool is_server;
    std::string alpn_wire;  // the server's protocols, each after its length, by preference
};

/// OpenSSL's queued errors as one text ("what: reason; reason"), and the queue emptied.
[[nodiscard]] inline std::string openssl_errors(std::string_view what) {
    std::string text(what);
    const char* separator = ": ";
    while (const unsigned long code = ERR_get_error()) {
        char reason[256];
        ERR_error_string_n(code, reason, sizeof reason);
        text += separator;
        text += reason;
        separator = "; ";
    }
    return text;
}

/// One TLS session over one stream's transport.
class openssl_session final : public stream_filter {
public:
    openssl_session(std::shared_ptr<const tls_context_state> context, stream_transport& transport,
                    const std::string& server_hostname)
        : context_(std::move(context)), transport_(&transport) {
        ERR_clear_error();
        ssl_ = SSL_new(context_->ctx);
        if (ssl_ == nullptr) throw tls_error(openssl_errors("SSL_new"));
        BIO* bio = BIO_new(bio_method());
        if (bio == nullptr) {
            SSL_free(ssl_);
            throw tls_error(openssl_errors("BIO_new"));
        }
        BIO_set_data(bio, this);
        BIO_set_init(bio, 1);
        SSL_set_bio(ssl_, bio, bio);  // one reference, both ways: the SSL owns it
        if (context_->is_server) {
            SSL_set_accept_state(ssl_);
        } else {
            SSL_set_connect_state(ssl_);
            if (!server_hostname.empty() && !expect_host(server_hostname)) {
                const std::string error = openssl_errors("server_hostname " + server_hostname);
                SSL_free(ssl_);
                throw tls_error(error);
            }
        }
    }
    openssl_session(const openssl_session&) = delete;
    openssl_session& operator=(const openssl_session&) = delete;
    ~openssl_session() override { SSL_free(ssl_); }

    long handshake() noexcept override {
        ERR_clear_error();
        const int rc = SSL_do_handshake(ssl_);
        if (rc == 1) return 1;
        const long status = outcome(rc, "handshake");
        if (status == 0) {
            // The peer closed (or sent close_notify) before the handshake was done.
            record_failure("TLS handshake: the peer closed the connection");
            return failed;
        }
        return status;
    }

    long read(char* out, std::size_t size) noexcept override {
        if (failed_) return failed;
        ERR_clear_error();
        std::size_t got = 0;
        const int rc = SSL_read_ex(ssl_, out, size, &got);
        if (rc == 1) return static_cast<long>(got);
        return outcome(rc, "TLS read");
    }

    bool write(const char* data, std::size_t size) noexcept override {
        if (failed_) return false;
        ERR_clear_error();
        std::size_t written = 0;
        if (SSL_write_ex(ssl_, data, size, &written) == 1) return true;
        (void)outcome(0, "TLS write");
        failed_ = true;
        return false;
    }

    std::span<char> input_space() override { return input_.reserve(1, max_input_capacity); }
    void input_received(std::size_t n) noexcept override {
        if (n == 0) {
            input_ended_ = true;
        } else {
            input_.commit(n);
        }
    }
    void input_unread(std::string_view data) override { input_.unread(data); }

    void close() noexcept override {
        // Never after a fatal error (OpenSSL forbids it), nor before the session exists.
        if (failed_ || SSL_is_init_finished(ssl_) == 0) return;
        ERR_clear_error();
        (void)SSL_shutdown(ssl_);  // close_notify; the peer's answer is not waited for
        ERR_clear_error();
    }

    [[noreturn]] void throw_error() const override {
        if (verify_result_ != X509_V_OK) throw tls_verify_error(error_, verify_result_);
        throw tls_error(error_.empty() ? std::string("TLS session failed") : error_);
    }

    [[nodiscard]] std::string version() const override {
        return SSL_is_init_finished(ssl_) != 0 ? std::string(SSL_get_version(ssl_)) : std::string();
    }
    [[nodiscard]] std::string alpn_protocol() const override {
        const unsigned char* data = nullptr;
        unsigned int length = 0;
        SSL_get0_alpn_selected(ssl_, &data, &length);
        return std::string(reinterpret_cast<const char*>(data), data != nullptr ? length : 0);
    }
    [[nodiscard]] std::string peer_certificate_subject() const override {
        X509* certificate = SSL_get1_peer_certificate(ssl_);
        if (certificate == nullptr) return {};
        std::string subject;
        if (BIO* text = BIO_new(BIO_s_mem())) {
            if (X509_NAME_print_ex(text, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253) >=
                0) {
                char* data = nullptr;
                const long length = BIO_get_mem_data(text, &data);
                if (length > 0) subject.assign(data, static_cast<std::size_t>(length));
            }
            BIO_free(text);
        }
        X509_free(certificate);
        return subject;
    }

    [[nodiscard]] SSL* native_handle() const noexcept { return ssl_; }

private:
    // Received bytes are held up to this much when the reader is slow to take the plaintext.
    static constexpr std::size_t max_input_capacity = std::size_t{256} * 1024;

    // Client side: the name (or address) the certificate must be for, and SNI for a name.
    bool expect_host(const std::string& host) noexcept {
        unsigned char address[16];
        const bool numeric = ::inet_pton(AF_INET, host.c_str(), address) == 1 ||
                             ::inet_pton(AF_INET6, host.c_str(), address) == 1;
        if (numeric) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str()) == 1;
        return SSL_set_tlsext_host_name(ssl_, host.c_str()) == 1 &&
               SSL_set1_host(ssl_, host.c_str()) == 1;
    }

    // What a failed call means: more input needed, the end (close_notify, or an end without
    // one, read as the end as asyncio does), or a failure, recorded.
    long outcome(int rc, const char* what) noexcept {
        switch (SSL_get_error(ssl_, rc)) {
        case SSL_ERROR_WANT_READ: return need_input;
        case SSL_ERROR_ZERO_RETURN: return 0;
        default: break;
        }
        failed_ = true;
        try {
            const long verify = SSL_get_verify_result(ssl_);
            if (verify != X509_V_OK && SSL_is_init_finished(ssl_) == 0) {
                verify_result_ = verify;
                ERR_clear_error();
                record_failure(std::string("certificate verify failed: ") +
                               X509_verify_cert_error_string(verify));
            } else {
                record_failure(openssl_errors(what));
            }
        } catch (...) {
            // No memory for the text: the failure stands without it.
        }
        return failed;
    }

    void record_failure(std::string text) noexcept {
        failed_ = true;
        error_ = std::move(text);
    }

    // -- The BIO between OpenSSL and the transport -------------------------------------------

    static BIO_METHOD* bio_method() {
        // Made once, kept for the process (OpenSSL's own methods are static too).
        static BIO_METHOD* const method = [] {
            BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "corio");
            if (m != nullptr) {
                BIO_meth_set_write_ex(m, &bio_write);
                BIO_meth_set_read_ex(m, &bio_read);
                BIO_meth_set_ctrl(m, &bio_ctrl);
            }
            return m;
        }();
        return method;
    }

    static int bio_write(BIO* bio, const char* data, std::size_t size, std::size_t* written) {
        auto* self = static_cast<openssl_session*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        if (!self->transport_->write_filtered(data, size)) return 0;
        *written = size;
        return 1;
    }

    static int bio_read(BIO* bio, char* out, std::size_t size, std::size_t* read_bytes) {
        auto* self = static_cast<openssl_session*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        if (self->input_.empty()) {
            if (!self->input_ended_) BIO_set_retry_read(bio);
            return 0;
        }
        const std::size_t take = std::min(size, self->input_.size());
        std::memcpy(out, self->input_.view().data(), take);
        self->input_.consume(take);
        *read_bytes = take;
        return 1;
    }

    static long bio_ctrl(BIO* bio, int command, long, void*) {
        auto* self = static_cast<openssl_session*>(BIO_get_data(bio));
        switch (command) {
        case BIO_CTRL_FLUSH: return 1;
        case BIO_CTRL_EOF: return self->input_ended_ && self->input_.empty() ? 1 : 0;
        case BIO_CTRL_PENDING: return static_cast<long>(self->input_.size());
        default: return 0;
        }
    }

    std::shared_ptr<const tls_context_state> context_;  // outlives ssl_: its ALPN list
    stream_transport* transport_;
    SSL* ssl_ = nullptr;
    read_buffer input_;
    bool input_ended_ = false;
    bool failed_ = false;
    long verify_result_ = X509_V_OK;
    std::string error_;
};

}  // namespace corio::detail
