#pragma once
/// Bounds-checked big-endian reader and growing writer for IKEv2 wire formats. The reader never
/// reads past its span: every take reports failure instead.

#include <cstdint>
#include <optional>

#include "bytes.hh"
#include "common/byte_order.hh"

namespace msecgw::gkm {

class wire_reader {
public:
    explicit wire_reader(byte_view data) : _data(data) {}

    size_t remaining() const { return _data.size() - _at; }
    size_t offset() const { return _at; }
    bool at_end() const { return _at == _data.size(); }

    std::optional<byte_view> take(size_t n)
    {
        if (n > remaining()) {
            return std::nullopt;
        }
        byte_view out = _data.subspan(_at, n);
        _at += n;
        return out;
    }
    std::optional<uint8_t> u8()
    {
        auto b = take(1);
        return b ? std::optional<uint8_t>((*b)[0]) : std::nullopt;
    }
    std::optional<uint16_t> u16()
    {
        auto b = take(2);
        return b ? std::optional<uint16_t>(load_be16(b->data())) : std::nullopt;
    }
    std::optional<uint32_t> u32()
    {
        auto b = take(4);
        return b ? std::optional<uint32_t>(load_be32(b->data())) : std::nullopt;
    }
    std::optional<uint64_t> u64()
    {
        auto hi = u32();
        auto lo = u32();
        return hi && lo ? std::optional<uint64_t>(uint64_t{*hi} << 32 | *lo) : std::nullopt;
    }
    /// Everything not read yet.
    byte_view rest()
    {
        byte_view out = _data.subspan(_at);
        _at = _data.size();
        return out;
    }

private:
    byte_view _data;
    size_t _at = 0;
};

class wire_writer {
public:
    explicit wire_writer(bytes& out) : _out(out) {}

    size_t size() const { return _out.size(); }
    void u8(uint8_t v) { _out.push_back(v); }
    void u16(uint16_t v)
    {
        _out.push_back(static_cast<uint8_t>(v >> 8));
        _out.push_back(static_cast<uint8_t>(v));
    }
    void u32(uint32_t v)
    {
        u16(static_cast<uint16_t>(v >> 16));
        u16(static_cast<uint16_t>(v));
    }
    void u64(uint64_t v)
    {
        u32(static_cast<uint32_t>(v >> 32));
        u32(static_cast<uint32_t>(v));
    }
    void put(byte_view data) { _out.insert(_out.end(), data.begin(), data.end()); }
    /// Writes the 16-bit length of everything from start to the current end at position at.
    void patch_length16(size_t at, size_t start) { store_be16(&_out[at], static_cast<uint16_t>(_out.size() - start)); }
    void patch8(size_t at, uint8_t v) { _out[at] = v; }
    void patch32(size_t at, uint32_t v) { store_be32(&_out[at], v); }

private:
    bytes& _out;
};

} // namespace msecgw::gkm
