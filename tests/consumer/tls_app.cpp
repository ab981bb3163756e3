// Built against an installed corio::tls (tests/consumer/CMakeLists.txt): <corio/corio.hpp>
// includes TLS when CORIO_HAS_TLS is defined, as corio::tls defines it, and the program links
// OpenSSL through the target alone.
#include <corio/corio.hpp>

#include <cstdio>
#include <string>

int main() {
    corio::tls_context client = corio::tls_context::client();
    client.set_alpn({"h2", "http/1.1"});
    if (client.is_server() || client.native_handle() == nullptr) {
        std::puts("tls_app: a client context is not what it should be");
        return 1;
    }
    try {
        (void)corio::tls_context::server("/nonexistent/cert.pem", "/nonexistent/key.pem");
        std::puts("tls_app: a missing certificate was accepted");
        return 1;
    } catch (const corio::tls_error& e) {
        std::printf("tls_app: OpenSSL linked; a missing certificate is refused (%s)\n",
                    std::string(e.what()).substr(0, 60).c_str());
    }
    return 0;
}
