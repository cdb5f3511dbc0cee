// The YAML configuration loader: syntax, structure, every field's validation and the cross-checks.
#include <cstdint>
#include <string_view>

#include "config/config.hh"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    (void)msecgw::config::load_string(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
    return 0;
}
