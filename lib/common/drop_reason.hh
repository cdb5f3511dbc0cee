#pragma once
/// Every reason a packet can be dropped (DESIGN.md invariant 4). One table feeds the per-lcore
/// counters, the summary, --stats-json, the CLI and the Prometheus `reason` label.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace msecgw {

enum class drop_reason : uint8_t {
    frame_truncated,      ///< shorter than an Ethernet header
    vlan_truncated,       ///< 802.1Q tag cut off
    not_ip,               ///< EtherType is neither IPv4 nor IPv6
    ip_truncated,         ///< shorter than the minimal IP header
    ip_bad_version,       ///< version field disagrees with the EtherType
    ip_bad_ihl,           ///< IPv4 IHL < 5 or options beyond the frame
    ip_bad_length,        ///< IP total/payload length inconsistent with the frame
    ip_bad_checksum,      ///< IPv4 header checksum wrong
    ipv6_bad_ext_header,  ///< IPv6 extension header chain truncated or too long
    l4_truncated,         ///< UDP/TCP header cut off in a first fragment
    policy_discard,       ///< matched a DISCARD policy
    policy_no_match,      ///< no policy matched (RFC 4301: discard)
    sa_not_ready,         ///< PROTECT policy whose SA is not usable on the data plane
    no_group_key,         ///< PROTECT policy of a group whose key has not come from the key server yet
    mtu_exceeded,         ///< bypassed frame larger than the egress port MTU
    tx_full,              ///< egress queue stayed full
    clear_on_protected,   ///< clear packet matched an inbound PROTECT policy (must arrive as ESP)
    esp_malformed,        ///< ESP packet too short or misaligned for its header, IV, trailer, ICV
    esp_no_sa,            ///< no inbound SA for (SPI, dst, src)
    replay,               ///< sequence number already seen in the window
    replay_too_old,       ///< sequence number left of the window (or zero)
    auth_failed,          ///< ICV did not verify
    esp_bad_trailer,      ///< decrypted padding / next header / inner length invalid
    outer_inner_mismatch, ///< RFC 5374 §3.1: outer addresses differ from the inner ones
    ecn_drop,             ///< RFC 6040: outer CE on a Not-ECT inner packet
    inner_policy_mismatch,///< decrypted packet matches no inbound policy naming its SA
    replay_table_full,    ///< no room for another (SA, source) replay window on this lcore
    iv_block_pending,     ///< the lcore's IV counter block ran out before the next arrived
    sa_exhausted,         ///< the SA's counter space is used up: rekey
    sa_expired,           ///< the SA passed a hard lifetime (packets, bytes or seconds)
    no_room,              ///< mbuf lacks head- or tailroom for the ESP encapsulation
    crypto_failed,        ///< the crypto engine rejected the operation
    frag_no_mbuf,         ///< outbound: no mbuf left for a fragment of a packet over the MTU
    frag_malformed,       ///< inbound fragment that cannot belong to a valid datagram
    frag_overlap,         ///< inbound fragment overlapping another (the datagram is abandoned)
    frag_timeout,         ///< inbound datagram not complete in time (its fragments are dropped)
    frag_table_full,      ///< no reassembly slot free for a new datagram
    frag_too_big,         ///< reassembled datagram larger than a packet buffer
    srcauth_missing,       ///< packet of a source-authenticated SA without a source-authentication tag
    srcauth_unexpected,    ///< source-authentication tag on an SA configured without source_auth
    srcauth_malformed,     ///< source-authentication header does not parse
    srcauth_unknown_sender, ///< no trust entry binds the tag's sender to the packet's source
    srcauth_wrong_mode,    ///< tag of another source-authentication mode than configured
    srcauth_not_bootstrapped, ///< TESLA packet before a verified bootstrap of its sender
    srcauth_forged,        ///< TESLA MAC or manifest digest does not match
    srcauth_unsafe,        ///< TESLA packet that arrived after its key may have been disclosed
    srcauth_bad_interval,  ///< TESLA interval outside the chain or ahead of the sender's clock
    srcauth_hold_overflow, ///< hold buffer of the sender full
    srcauth_timeout,       ///< held longer than the hold timeout (no key or no manifest)
    srcauth_replayed_manifest, ///< manifest not newer than the last accepted one
    srcauth_replayed_packet, ///< source-authenticated sequence number already released
    srcauth_bad_signature, ///< packet, manifest or bootstrap signature does not verify
    srcauth_bad_disclosure, ///< disclosed TESLA key not on the chain
    srcauth_stale_control, ///< bootstrap or disclosure older than what is known
    srcauth_chain_replaced, ///< held under a TESLA chain a newer bootstrap replaced
    srcauth_tag_failed,    ///< sender could not tag (TESLA chain ended, manifest backlog, signing failed)
    esp_wrong_region,      ///< ESP whose SPI belongs to an SA of another key region than the rx port's
    count_
};

inline constexpr std::size_t drop_reason_count = static_cast<std::size_t>(drop_reason::count_);

struct drop_info {
    drop_reason reason;
    std::string_view label; ///< CLI name and Prometheus label value
    std::string_view help;
};

inline constexpr std::array<drop_info, drop_reason_count> drop_table{{
    {drop_reason::frame_truncated, "frame_truncated", "frame shorter than an Ethernet header"},
    {drop_reason::vlan_truncated, "vlan_truncated", "802.1Q tag cut off"},
    {drop_reason::not_ip, "not_ip", "EtherType neither IPv4 nor IPv6"},
    {drop_reason::ip_truncated, "ip_truncated", "shorter than the minimal IP header"},
    {drop_reason::ip_bad_version, "ip_bad_version", "IP version disagrees with the EtherType"},
    {drop_reason::ip_bad_ihl, "ip_bad_ihl", "IPv4 IHL below 5 or options beyond the frame"},
    {drop_reason::ip_bad_length, "ip_bad_length", "IP length inconsistent with the frame"},
    {drop_reason::ip_bad_checksum, "ip_bad_checksum", "IPv4 header checksum wrong"},
    {drop_reason::ipv6_bad_ext_header, "ipv6_bad_ext_header", "IPv6 extension header chain truncated or too long"},
    {drop_reason::l4_truncated, "l4_truncated", "UDP/TCP header cut off"},
    {drop_reason::policy_discard, "policy_discard", "matched a DISCARD policy"},
    {drop_reason::policy_no_match, "policy_no_match", "no policy matched (discard by default)"},
    {drop_reason::sa_not_ready, "sa_not_ready", "PROTECT policy whose SA is not usable"},
    {drop_reason::no_group_key, "no_group_key", "PROTECT policy of a group with no key from the key server yet"},
    {drop_reason::mtu_exceeded, "mtu_exceeded", "frame larger than the egress port MTU"},
    {drop_reason::tx_full, "tx_full", "egress queue stayed full"},
    {drop_reason::clear_on_protected, "clear_on_protected", "clear packet where policy requires ESP"},
    {drop_reason::esp_malformed, "esp_malformed", "ESP packet too short or misaligned"},
    {drop_reason::esp_no_sa, "esp_no_sa", "no inbound SA for SPI, destination and source"},
    {drop_reason::replay, "replay", "sequence number already received"},
    {drop_reason::replay_too_old, "replay_too_old", "sequence number left of the replay window"},
    {drop_reason::auth_failed, "auth_failed", "ICV did not verify"},
    {drop_reason::esp_bad_trailer, "esp_bad_trailer", "decrypted padding or next header invalid"},
    {drop_reason::outer_inner_mismatch, "outer_inner_mismatch", "outer addresses differ from inner (RFC 5374)"},
    {drop_reason::ecn_drop, "ecn_drop", "outer CE on a Not-ECT inner packet (RFC 6040)"},
    {drop_reason::inner_policy_mismatch, "inner_policy_mismatch", "decrypted packet not allowed by a policy of its SA"},
    {drop_reason::replay_table_full, "replay_table_full", "no room for another replay window"},
    {drop_reason::iv_block_pending, "iv_block_pending", "IV counter block not yet reserved"},
    {drop_reason::sa_exhausted, "sa_exhausted", "SA counter space used up"},
    {drop_reason::sa_expired, "sa_expired", "SA passed a hard lifetime"},
    {drop_reason::no_room, "no_room", "mbuf lacks room for the ESP encapsulation"},
    {drop_reason::crypto_failed, "crypto_failed", "crypto engine rejected the operation"},
    {drop_reason::frag_no_mbuf, "frag_no_mbuf", "no packet buffer for an outer fragment"},
    {drop_reason::frag_malformed, "frag_malformed", "fragment cannot belong to a valid datagram"},
    {drop_reason::frag_overlap, "frag_overlap", "fragment overlaps or duplicates another"},
    {drop_reason::frag_timeout, "frag_timeout", "datagram not reassembled in time"},
    {drop_reason::frag_table_full, "frag_table_full", "no reassembly slot for a new datagram"},
    {drop_reason::frag_too_big, "frag_too_big", "reassembled datagram larger than a packet buffer"},
    {drop_reason::srcauth_missing, "srcauth_missing", "packet of a source-authenticated SA without a source-authentication tag"},
    {drop_reason::srcauth_unexpected, "srcauth_unexpected", "source-authentication tag on an SA configured without source_auth"},
    {drop_reason::srcauth_malformed, "srcauth_malformed", "source-authentication header does not parse"},
    {drop_reason::srcauth_unknown_sender, "srcauth_unknown_sender", "no trust entry binds the tag's sender to the packet's source"},
    {drop_reason::srcauth_wrong_mode, "srcauth_wrong_mode", "tag of another source-authentication mode than configured"},
    {drop_reason::srcauth_not_bootstrapped, "srcauth_not_bootstrapped", "TESLA packet before a verified bootstrap of its sender"},
    {drop_reason::srcauth_forged, "srcauth_forged", "TESLA MAC or manifest digest does not match"},
    {drop_reason::srcauth_unsafe, "srcauth_unsafe", "TESLA packet that arrived after its key may have been disclosed"},
    {drop_reason::srcauth_bad_interval, "srcauth_bad_interval", "TESLA interval outside the chain or ahead of the sender's clock"},
    {drop_reason::srcauth_hold_overflow, "srcauth_hold_overflow", "hold buffer of the sender full"},
    {drop_reason::srcauth_timeout, "srcauth_timeout", "held longer than the hold timeout (no key or no manifest)"},
    {drop_reason::srcauth_replayed_manifest, "srcauth_replayed_manifest", "manifest not newer than the last accepted one"},
    {drop_reason::srcauth_replayed_packet, "srcauth_replayed_packet", "source-authenticated sequence number already released"},
    {drop_reason::srcauth_bad_signature, "srcauth_bad_signature", "packet, manifest or bootstrap signature does not verify"},
    {drop_reason::srcauth_bad_disclosure, "srcauth_bad_disclosure", "disclosed TESLA key not on the chain"},
    {drop_reason::srcauth_stale_control, "srcauth_stale_control", "bootstrap or disclosure older than what is known"},
    {drop_reason::srcauth_chain_replaced, "srcauth_chain_replaced", "held under a TESLA chain a newer bootstrap replaced"},
    {drop_reason::srcauth_tag_failed, "srcauth_tag_failed", "sender could not tag (TESLA chain ended, manifest backlog, signing failed)"},
    {drop_reason::esp_wrong_region, "esp_wrong_region", "ESP under an SA of another key region than the receiving port's"},
}};

constexpr bool drop_table_is_complete()
{
    for (std::size_t i = 0; i < drop_reason_count; ++i) {
        if (static_cast<std::size_t>(drop_table[i].reason) != i || drop_table[i].label.empty()) {
            return false;
        }
    }
    return true;
}
static_assert(drop_table_is_complete(), "every drop_reason needs its row, in enum order");

constexpr std::string_view to_label(drop_reason r) { return drop_table[static_cast<std::size_t>(r)].label; }

} // namespace msecgw
