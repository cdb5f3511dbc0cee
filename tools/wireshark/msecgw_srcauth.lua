-- Wireshark / tshark dissector for msecgw's source-authentication header (docs/wire-format.md).
-- The header travels inside the ESP payload with ESP Next Header 253; with ESP decryption
-- (esp_sa table) tshark hands the decrypted payload to the ip.proto table, where this registers.
--   tshark -X lua_script:tools/wireshark/msecgw_srcauth.lua -r capture.pcap -V
-- All integers are big-endian.

local p = Proto("msecgw_srcauth", "msecgw source authentication")

local types = {
    [1] = "tesla_data", [2] = "manifest_data", [3] = "signed_data",
    [4] = "tesla_bootstrap", [5] = "tesla_disclosure", [6] = "manifest",
}
local sig_algs = { [1] = "Ed25519", [2] = "ECDSA P-256 (r||s)" }
local mac_algs = { [1] = "AES-128-GMAC" }
local next_headers = { [4] = "IPv4", [41] = "IPv6", [59] = "none" }

local f = {
    version = ProtoField.uint8("srcauth.version", "Version", base.DEC, nil, 0xf0),
    type = ProtoField.uint8("srcauth.type", "Type", base.DEC, types, 0x0f),
    next = ProtoField.uint8("srcauth.next", "Next header", base.DEC, next_headers),
    length = ProtoField.uint16("srcauth.length", "Header length", base.DEC),
    sender = ProtoField.uint32("srcauth.sender", "Sender id", base.HEX),
    seq = ProtoField.uint64("srcauth.seq", "Sequence number", base.DEC),
    -- tesla_data, tesla_disclosure
    interval = ProtoField.uint32("srcauth.tesla.interval", "Interval", base.DEC),
    mac = ProtoField.bytes("srcauth.tesla.mac", "MAC (GMAC)"),
    disclosed = ProtoField.uint32("srcauth.tesla.disclosed_interval", "Disclosed interval", base.DEC),
    key = ProtoField.bytes("srcauth.tesla.key", "Disclosed key"),
    reserved = ProtoField.bytes("srcauth.reserved", "Reserved"),
    -- bootstrap
    t0 = ProtoField.uint64("srcauth.boot.t0", "Interval 0 start (ns)", base.DEC),
    interval_ns = ProtoField.uint64("srcauth.boot.interval_ns", "Interval length (ns)", base.DEC),
    delay = ProtoField.uint32("srcauth.boot.delay", "Disclosure delay (intervals)", base.DEC),
    chain_len = ProtoField.uint32("srcauth.boot.chain_length", "Chain length", base.DEC),
    commit = ProtoField.uint32("srcauth.boot.commit_interval", "Committed interval", base.DEC),
    mac_alg = ProtoField.uint8("srcauth.boot.mac_alg", "MAC algorithm", base.DEC, mac_algs),
    commit_key = ProtoField.bytes("srcauth.boot.key", "Committed key"),
    -- manifest
    first = ProtoField.uint64("srcauth.mf.first", "First sequence number", base.DEC),
    count = ProtoField.uint16("srcauth.mf.count", "Digests", base.DEC),
    digest_len = ProtoField.uint8("srcauth.mf.digest_len", "Digest length", base.DEC),
    digest = ProtoField.bytes("srcauth.mf.digest", "Digest"),
    -- signatures
    sig_alg = ProtoField.uint8("srcauth.sig_alg", "Signature algorithm", base.DEC, sig_algs),
    signature = ProtoField.bytes("srcauth.signature", "Signature"),
}
p.fields = f

local e_bad = ProtoExpert.new("srcauth.malformed", "Malformed source-authentication header",
                              expert.group.MALFORMED, expert.severity.ERROR)
p.experts = { e_bad }

local function inner(tvb, pinfo, tree, next_header, offset, len)
    if len <= 0 then return end
    local name = next_header == 4 and "ip" or (next_header == 41 and "ipv6" or nil)
    if name then
        Dissector.get(name):call(tvb(offset, len):tvb(), pinfo, tree)
    end
end

function p.dissector(tvb, pinfo, tree)
    local total = tvb:len()
    if total < 16 then return 0 end
    pinfo.cols.protocol = "SRCAUTH"
    local t = tvb(0, 1):uint() % 16
    local next_header = tvb(1, 1):uint()
    local hlen = tvb(2, 2):uint()
    local st = tree:add(p, tvb(0, math.min(hlen, total)))
    st:add(f.version, tvb(0, 1))
    st:add(f.type, tvb(0, 1))
    st:add(f.next, tvb(1, 1))
    st:add(f.length, tvb(2, 2))
    st:add(f.sender, tvb(4, 4))
    st:add(f.seq, tvb(8, 8))
    pinfo.cols.info = string.format("%s sender 0x%08x seq %s", types[t] or "unknown", tvb(4, 4):uint(),
                                    tostring(tvb(8, 8):uint64()))
    if hlen > total then
        st:add_proto_expert_info(e_bad, "header longer than the packet")
        return total
    end
    if t == 1 and hlen == 36 then
        st:add(f.interval, tvb(16, 4))
        st:add(f.mac, tvb(20, 16))
        inner(tvb, pinfo, tree, next_header, 36, total - 36)
    elseif t == 2 and hlen == 16 then
        inner(tvb, pinfo, tree, next_header, 16, total - 16)
    elseif t == 3 and hlen == 20 and total >= 84 then
        st:add(f.sig_alg, tvb(16, 1))
        st:add(f.reserved, tvb(17, 3))
        st:add(f.signature, tvb(total - 64, 64))
        inner(tvb, pinfo, tree, next_header, 20, total - 84)
    elseif t == 4 and hlen == 128 then
        st:add(f.t0, tvb(16, 8))
        st:add(f.interval_ns, tvb(24, 8))
        st:add(f.delay, tvb(32, 4))
        st:add(f.chain_len, tvb(36, 4))
        st:add(f.commit, tvb(40, 4))
        st:add(f.sig_alg, tvb(44, 1))
        st:add(f.mac_alg, tvb(45, 1))
        st:add(f.reserved, tvb(46, 2))
        st:add(f.commit_key, tvb(48, 16))
        st:add(f.signature, tvb(64, 64))
    elseif t == 5 and hlen == 48 then
        st:add(f.disclosed, tvb(16, 4))
        st:add(f.reserved, tvb(20, 12))
        st:add(f.key, tvb(32, 16))
    elseif t == 6 and hlen >= 96 and hlen == 32 + 16 * tvb(24, 2):uint() + 64 then
        local n = tvb(24, 2):uint()
        st:add(f.first, tvb(16, 8))
        st:add(f.count, tvb(24, 2))
        st:add(f.sig_alg, tvb(26, 1))
        st:add(f.digest_len, tvb(27, 1))
        st:add(f.reserved, tvb(28, 4))
        for i = 0, n - 1 do
            st:add(f.digest, tvb(32 + 16 * i, 16))
        end
        st:add(f.signature, tvb(32 + 16 * n, 64))
    else
        st:add_proto_expert_info(e_bad, "length does not match the type")
    end
    return total
end

DissectorTable.get("ip.proto"):add(253, p)
