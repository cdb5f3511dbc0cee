#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

#include "port.hh"

namespace msecgw::port {

namespace {

std::string where(const std::string& file, const YAML::Node& n, const std::string& key)
{
    return file + ":" + std::to_string(n.Mark().line + 1) + ": " + key + ": ";
}

result<std::vector<std::string>> string_list(const std::string& file, const YAML::Node& n,
                                             const std::string& key)
{
    if (!n.IsSequence()) {
        return error{errc::config_bad_value, where(file, n, key) + "expected a list of names"};
    }
    std::vector<std::string> out;
    for (const auto& item : n) {
        out.push_back(item.as<std::string>());
    }
    return out;
}

result<profile> parse_profile(const std::string& file)
{
    profile p;
    p.file = file;
    YAML::Node root = YAML::LoadFile(file);
    if (!root.IsMap()) {
        return error{errc::config_bad_value, file + ":1: expected a mapping"};
    }
    static const std::set<std::string> known = {"driver", "rx_desc", "tx_desc", "rx_offloads",
                                                "tx_offloads", "rss"};
    for (const auto& kv : root) {
        const auto key = kv.first.as<std::string>();
        if (!known.contains(key)) {
            return error{errc::config_unknown_key, where(file, kv.first, key) + "unknown key"};
        }
        if (key == "rx_desc" || key == "tx_desc") {
            const int v = kv.second.as<int>();
            if (v < 64 || v > 16384) {
                return error{errc::config_bad_value, where(file, kv.second, key) + "expected 64..16384"};
            }
            (key == "rx_desc" ? p.rx_desc : p.tx_desc) = static_cast<uint16_t>(v);
        } else if (key == "rx_offloads" || key == "tx_offloads") {
            auto l = string_list(file, kv.second, key);
            if (!l) {
                return l.err();
            }
            (key == "rx_offloads" ? p.rx_offloads : p.tx_offloads) = std::move(l.value());
        } else if (key == "rss") {
            p.rss = kv.second.as<bool>();
        }
    }
    return p;
}

} // namespace

result<profile> load_profile(const std::string& dir, const std::string& driver)
{
    namespace fs = std::filesystem;
    for (const std::string& name : {driver + ".yaml", std::string("default.yaml")}) {
        const fs::path path = fs::path(dir) / name;
        if (!fs::exists(path)) {
            continue;
        }
        try {
            return parse_profile(path.string());
        } catch (const YAML::Exception& e) {
            return error{errc::config_bad_value,
                         path.string() + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg};
        }
    }
    return error{errc::io, "no port profile " + driver + ".yaml or default.yaml in " + dir};
}

} // namespace msecgw::port
