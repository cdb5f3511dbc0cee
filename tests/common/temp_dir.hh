#pragma once
/// A fresh directory under /tmp for one test (a state_dir, say), removed with its contents after it.

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace msecgw::test {

class temp_dir {
public:
    /// /tmp/msecgw-<tag>-XXXXXX; throws (a failed test) when it cannot be made.
    explicit temp_dir(const std::string& tag)
    {
        std::string tmpl = "/tmp/msecgw-" + tag + "-XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) {
            throw std::runtime_error("mkdtemp " + tmpl + " failed");
        }
        _path = tmpl;
    }
    ~temp_dir()
    {
        std::error_code ec;
        std::filesystem::remove_all(_path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::string& path() const { return _path; }

private:
    std::string _path;
};

} // namespace msecgw::test
