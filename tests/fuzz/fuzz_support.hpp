// What every fuzzer of tests/fuzz needs: a readable rendering of arbitrary bytes, and a way to
// report a broken property that libFuzzer records as a crash (with the input that caused it).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace corio_fuzz {

/// `bytes` with everything outside printable ASCII (and the backslash) as `\xNN`.
inline std::string escaped(std::string_view bytes) {
    std::string out;
    for (const char c : bytes) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += c;
        } else {
            char code[8];
            std::snprintf(code, sizeof code, "\\x%02x", static_cast<unsigned char>(c));
            out += code;
        }
    }
    return out;
}

/// Prints `what` after the fuzzer's name and aborts: libFuzzer saves the input as a crash.
[[noreturn]] inline void fail(const char* fuzzer, const std::string& what) {
    std::fprintf(stderr, "%s: %s\n", fuzzer, what.c_str());
    std::abort();
}

}  // namespace corio_fuzz
