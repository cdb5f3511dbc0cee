#include "text.hh"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace msecgw::cli {

std::string table::str() const
{
    std::vector<std::size_t> w(_header.size(), 0);
    auto widen = [&](const std::vector<std::string>& cells) {
        for (std::size_t i = 0; i < cells.size() && i < w.size(); ++i) {
            w[i] = std::max(w[i], cells[i].size());
        }
    };
    widen(_header);
    for (const auto& r : _rows) {
        widen(r);
    }
    // A column whose every cell is a number (or "-", none) is right-aligned, its header too.
    auto numeric = [](const std::string& c) {
        return c == "-" || (!c.empty() && c.find_first_not_of("0123456789.") == std::string::npos);
    };
    std::vector<bool> right(w.size(), !_rows.empty());
    for (const auto& r : _rows) {
        for (std::size_t i = 0; i < w.size(); ++i) {
            right[i] = right[i] && i < r.size() && numeric(r[i]);
        }
    }
    auto line = [&](const std::vector<std::string>& cells) {
        std::string out;
        for (std::size_t i = 0; i < w.size(); ++i) {
            const std::string cell = i < cells.size() ? cells[i] : "";
            const std::string pad(w[i] - cell.size(), ' ');
            out += (i ? "  " : "") + (right[i] ? pad + cell : cell + pad);
        }
        while (!out.empty() && out.back() == ' ') {
            out.pop_back();
        }
        return out + "\n";
    };
    std::string out = line(_header);
    for (const auto& r : _rows) {
        out += line(r);
    }
    return out;
}

std::string fields::str() const
{
    std::size_t w = 0;
    for (const auto& [n, v] : _items) {
        w = std::max(w, n.size());
    }
    std::string out;
    for (const auto& [n, v] : _items) {
        out += "  " + n + ":" + std::string(w - n.size() + 1, ' ') + v + "\n";
    }
    return out;
}

void json::comma()
{
    if (_after_key) {
        _after_key = false;
        return;
    }
    if (!_first.empty()) {
        if (!_first.back()) {
            _out += ", ";
        }
        _first.back() = false;
    }
}

json& json::obj()
{
    comma();
    _out += "{";
    _first.push_back(true);
    _close.push_back('}');
    return *this;
}

json& json::arr()
{
    comma();
    _out += "[";
    _first.push_back(true);
    _close.push_back(']');
    return *this;
}

json& json::end()
{
    _out += _close.back();
    _close.pop_back();
    _first.pop_back();
    return *this;
}

json& json::key(std::string_view k)
{
    str(k);
    _out += ": ";
    _after_key = true;
    return *this;
}

json& json::str(std::string_view v)
{
    comma();
    _out += '"';
    for (const char c : v) {
        if (c == '"' || c == '\\') {
            _out += '\\';
            _out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            _out += buf;
        } else {
            _out += c;
        }
    }
    _out += '"';
    return *this;
}

json& json::num(uint64_t v)
{
    comma();
    _out += std::to_string(v);
    return *this;
}

json& json::num_signed(int64_t v)
{
    comma();
    _out += std::to_string(v);
    return *this;
}

json& json::real(double v)
{
    comma();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    _out += buf;
    return *this;
}

json& json::boolean(bool v)
{
    comma();
    _out += v ? "true" : "false";
    return *this;
}

json& json::null()
{
    comma();
    _out += "null";
    return *this;
}

std::string hex32(uint32_t v)
{
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

std::string shown(std::string_view word)
{
    std::size_t run = 0;
    for (const char c : word) {
        run = std::isxdigit(static_cast<unsigned char>(c)) ? run + 1 : 0;
        if (run >= 12) {
            std::string out = "(";
            out.append(std::to_string(word.size())).append(" characters, not shown: they could be key material)");
            return out;
        }
    }
    if (word.size() > 64) {
        std::string out = "(";
        out.append(std::to_string(word.size())).append(" characters, not shown)");
        return out;
    }
    return std::string(word);
}

} // namespace msecgw::cli
