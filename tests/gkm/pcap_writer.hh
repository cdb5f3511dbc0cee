#pragma once
// Writes datagrams into a classic pcap file as Ethernet/IPv4/UDP frames (or any IP protocol: add_ip) with correct lengths and
// IPv4 header checksum, so tshark dissects exactly the bytes our sockets sent.

#include <cstdint>
#include <fstream>
#include <string>

#include "common/byte_order.hh"
#include "gkm/udp.hh"

namespace msecgw::gkm::test {

class pcap_writer {
public:
    explicit pcap_writer(const std::string& path) : _out(path, std::ios::binary)
    {
        uint8_t header[24] = {};
        put_le32(header, 0xa1b2c3d4);
        header[4] = 2;    // version 2.4
        header[6] = 4;
        put_le32(header + 16, 65535);  // snaplen
        put_le32(header + 20, 1);      // LINKTYPE_ETHERNET
        _out.write(reinterpret_cast<const char*>(header), sizeof header);
    }

    void add(const endpoint& from, const endpoint& to, byte_view payload)
    {
        bytes udp(8);
        store_be16(udp.data(), from.port);
        store_be16(udp.data() + 2, to.port);
        store_be16(udp.data() + 4, static_cast<uint16_t>(8 + payload.size()));  // checksum 0: none (IPv4)
        udp.insert(udp.end(), payload.begin(), payload.end());
        add_ip(from.address, to.address, 17, udp);
    }

    /// One Ethernet/IPv4 frame carrying `payload` as IP protocol `protocol`.
    void add_ip(uint32_t source, uint32_t destination, uint8_t protocol, byte_view payload)
    {
        bytes frame(14 + 20);
        frame[12] = 0x08;  // EtherType IPv4
        uint8_t* ip = frame.data() + 14;
        ip[0] = 0x45;
        store_be16(ip + 2, static_cast<uint16_t>(20 + payload.size()));
        store_be16(ip + 4, static_cast<uint16_t>(++_ip_id));
        ip[8] = 64;
        ip[9] = protocol;
        store_be32(ip + 12, source);
        store_be32(ip + 16, destination);
        store_be16(ip + 10, checksum(ip, 20));
        frame.insert(frame.end(), payload.begin(), payload.end());

        uint8_t record[16] = {};
        put_le32(record, ++_seconds);
        put_le32(record + 8, static_cast<uint32_t>(frame.size()));
        put_le32(record + 12, static_cast<uint32_t>(frame.size()));
        _out.write(reinterpret_cast<const char*>(record), sizeof record);
        _out.write(reinterpret_cast<const char*>(frame.data()), std::streamsize(frame.size()));
        _out.flush();
        ++_count;
    }

    /// An IPv4 header checksum (exposed for tests that build inner packets).
    static uint16_t ipv4_checksum(const uint8_t* header20) { return checksum(header20, 20); }

    unsigned count() const { return _count; }

private:
    static void put_le32(uint8_t* p, uint32_t v)
    {
        for (int i = 0; i < 4; ++i) {
            p[i] = static_cast<uint8_t>(v >> (8 * i));
        }
    }

    static uint16_t checksum(const uint8_t* p, size_t n)
    {
        uint32_t sum = 0;
        for (size_t i = 0; i < n; i += 2) {
            sum += load_be16(p + i);
        }
        while (sum >> 16) {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        return static_cast<uint16_t>(~sum);
    }

    std::ofstream _out;
    uint32_t _ip_id = 0;
    uint32_t _seconds = 1700000000;
    unsigned _count = 0;
};

} // namespace msecgw::gkm::test
