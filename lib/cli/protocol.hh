#pragma once
/// The unix-socket protocol between msecgw (server) and msecgw-cli (client). One command per
/// connection:
///   request  "MSECGW1\t<json 0|1>\t<word>\t<word>…\n"   (at most max_request bytes)
///   reply    "<status>\n<text>"                           (the server then closes)
/// status is cli::status (0 ok, 1 command failed, 2 usage); text goes to the client's stdout when
/// the status is 0, to its stderr otherwise.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace msecgw::cli::protocol {

inline constexpr std::string_view magic = "MSECGW1";
inline constexpr std::size_t max_request = 16384;
inline constexpr const char* default_socket = "/run/msecgw/cli.sock";

inline std::string request(const std::vector<std::string>& words, bool json)
{
    std::string out(magic);
    out += json ? "\t1" : "\t0";
    for (const auto& w : words) {
        out += '\t';
        out += w;
    }
    return out + "\n";
}

/// Splits a request line (without its newline); false if it is not one.
inline bool parse_request(std::string_view line, std::vector<std::string>* words, bool* json)
{
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (true) {
        const std::size_t tab = line.find('\t', start);
        parts.emplace_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
        if (tab == std::string_view::npos) {
            break;
        }
        start = tab + 1;
    }
    if (parts.size() < 2 || parts[0] != magic || (parts[1] != "0" && parts[1] != "1")) {
        return false;
    }
    *json = parts[1] == "1";
    words->assign(parts.begin() + 2, parts.end());
    return true;
}

} // namespace msecgw::cli::protocol
