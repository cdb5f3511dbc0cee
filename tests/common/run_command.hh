#pragma once
// Runs a shell command for the tests that drive external tools (tshark) and returns its stdout,
// without tshark's "Running as user root" warning, which says nothing about the capture.

#include <array>
#include <cstdio>
#include <string>

namespace msecgw::test {

inline std::string run_command(const std::string& command)
{
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    if (p == nullptr) {
        return out;
    }
    std::array<char, 4096> buf{};
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
        out.append(buf.data(), n);
    }
    ::pclose(p);
    const std::string root_warning = "Running as user \"root\" and group \"root\". This could be dangerous.\n";
    for (size_t at; (at = out.find(root_warning)) != std::string::npos;) {
        out.erase(at, root_warning.size());
    }
    return out;
}

} // namespace msecgw::test
