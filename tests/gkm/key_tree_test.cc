// [E2] The LKH key tree in the protocol, with real group members over UDP on loopback: members
// get their path keys at registration, joins and leaves are committed in batches (a membership
// GSA_REKEY with the new path keys, split to the MTU, then a TEK rekey under the new KEK), an
// evicted member cannot decrypt data sent after the rekey and a joiner cannot decrypt data sent
// before it; multicast delivery; a GCKS restart keeps the tree and a queued eviction.
//
// The GCKS's clock is frozen (gcks_time) where a test needs joins and leaves in one batch, so
// nothing depends on how fast this machine is.

#include <sys/socket.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "gkm/lkh.hh"
#include "loopback_fixture.hh"

using namespace msecgw;
using namespace msecgw::gkm;
using namespace msecgw::gkm::test;

namespace {

const std::vector<std::string> all_ids{"gm-a", "gm-b", "gm-c", "gm-d", "gm-e", "gm-f"};
const bytes aad{0, 0, 0x10, 0x01, 0, 0, 0, 1};
const std::string plaintext = "multicast data for the current members only";

/// A TEK as a member held it: key ‖ salt.
secret keymat_of(const tek& t)
{
    secret k(t.key.size() + t.salt.size());
    std::copy(t.key.view().begin(), t.key.view().end(), k.mutable_view().begin());
    std::copy(t.salt.view().begin(), t.salt.view().end(), k.mutable_view().begin() + t.key.size());
    return k;
}

struct packet {
    bytes iv = random_bytes(gcm_iv_size);
    bytes sealed;
};

packet seal_under(const tek& t)
{
    packet p;
    result<bytes> sealed = gcm_seal(keymat_of(t).view(), p.iv, aad, as_bytes(plaintext));
    EXPECT_TRUE(sealed.ok());
    p.sealed = std::move(*sealed);
    return p;
}

bool opens(const secret& keymat, const packet& p)
{
    return gcm_open(keymat.view(), p.iv, aad, p.sealed).ok();
}

} // namespace

class gkm_key_tree : public gkm_loopback {
protected:
    void SetUp() override { start_gcks(tree_config()); }

    static gcks_config tree_config(uint32_t batch_ms = 0)
    {
        gcks_config c = default_gcks_config();
        c.peers.clear();
        for (const std::string& id : all_ids) {
            c.peers.push_back(psk_identity{id, psk_of(id)});
        }
        group_config& g = c.groups[0];
        g.members = all_ids;
        g.senders = {};
        g.key_tree = true;
        g.lkh_max_members = 64;
        g.rekey_batch_ms = batch_ms;
        return c;
    }

    gkm::group_member& join(const std::string& id)
    {
        member_config c = member(id);
        c.sender = false;
        gkm::group_member& m = add_member(std::move(c));
        m.start(clock::now());
        ids.push_back(id);
        return m;
    }

    /// Polls every socket, ticks the GCKS (at gcks_time when frozen) and members, records every
    /// TEK each member ever held, until pred holds or the rounds run out.
    template <class Pred>
    bool drive(Pred pred, int max_rounds = 400)
    {
        for (int round = 0; round < max_rounds; ++round) {
            record_teks();
            if (pred()) {
                return true;
            }
            std::vector<pollfd> fds{{server->fd(), POLLIN, 0}};
            for (const auto& m : members) {
                fds.push_back({m->fd(), POLLIN, 0});
                if (m->rekey_fd() >= 0) {
                    fds.push_back({m->rekey_fd(), POLLIN, 0});
                }
            }
            ::poll(fds.data(), fds.size(), 10);
            server->tick(gcks_time.value_or(clock::now()));
            for (const auto& m : members) {
                m->tick(clock::now());
            }
        }
        record_teks();
        return pred();
    }

    void record_teks()
    {
        for (size_t i = 0; i < members.size(); ++i) {
            const group_membership* ms = members[i]->membership();
            if (ms == nullptr) {
                continue;
            }
            for (const tek& t : ms->teks) {
                auto& mine = held[ids[i]];
                if (!mine.contains(t.spi)) {
                    mine.emplace(t.spi, keymat_of(t));
                }
            }
        }
    }

    /// Registered, holding the GCKS's current TEK and path keys of its current epoch.
    bool current(const gkm::group_member& m) const
    {
        const group_status s = *server->status(7);
        return m.state() == member_state::registered && m.membership() != nullptr &&
               m.membership()->teks.front().spi == s.tek_spi && m.key_tree_epoch() == s.key_tree_epoch;
    }

    bool all_current(std::initializer_list<size_t> which) const
    {
        return std::all_of(which.begin(), which.end(), [&](size_t i) { return current(*members[i]); });
    }

    /// No TEK the member ever held opens the packet.
    void expect_cannot_decrypt(const std::string& id, const packet& p)
    {
        ASSERT_FALSE(held[id].empty()) << id << " never held a TEK";
        for (const auto& [spi, keymat] : held[id]) {
            EXPECT_FALSE(opens(keymat, p)) << id << " decrypts with the TEK of SPI " << spi;
        }
    }

    std::vector<std::string> ids;  ///< identity of members[i]
    std::map<std::string, std::map<uint32_t, secret>> held;
    std::optional<clock::time_point> gcks_time;
};

TEST_F(gkm_key_tree, RegistrationGivesThePathKeysAndTheKekFromTheRoot)
{
    gkm::group_member& a = join("gm-a");
    gkm::group_member& b = join("gm-b");
    ASSERT_TRUE(drive([&] { return all_current({0, 1}); })) << a.last_error() << " / " << b.last_error();
    EXPECT_EQ(server->status(7)->members, 2u);
    // A plain TEK rekey under the root-derived KEK reaches both.
    const uint64_t before = a.counters().rekeys_accepted + b.counters().rekeys_accepted;
    ASSERT_TRUE(server->rekey(7).ok());
    ASSERT_TRUE(drive([&] { return a.counters().rekeys_accepted + b.counters().rekeys_accepted == before + 2; }));
    EXPECT_TRUE(all_current({0, 1}));
    EXPECT_EQ(a.counters().rekeys_forged + b.counters().rekeys_forged, 0u);
}

TEST_F(gkm_key_tree, EvictedMemberCannotDecryptDataSentAfterTheRekey)
{
    join("gm-a");
    join("gm-b");
    gkm::group_member& c = join("gm-c");
    ASSERT_TRUE(drive([&] { return all_current({0, 1, 2}); }));
    const uint32_t epoch = server->status(7)->key_tree_epoch;

    // A config reload drops gm-c: one membership rekey, then a TEK rekey under the new KEK.
    ASSERT_TRUE(server->set_members(7, {"gm-a", "gm-b"}).ok());
    ASSERT_TRUE(drive([&] { return all_current({0, 1}) && c.state() == member_state::rejected; }))
        << c.last_error();
    EXPECT_EQ(server->status(7)->key_tree_epoch, epoch + 1);
    EXPECT_EQ(server->status(7)->members, 2u);
    EXPECT_GE(c.counters().key_tree_failures, 1u);  // it could not derive the new root
    EXPECT_EQ(c.rejection(), notify_type::authorization_failed);  // and its recovery was refused
    EXPECT_EQ(c.membership(), nullptr);
    EXPECT_EQ(members[0]->counters().reregistrations, 0u);

    const packet after = seal_under(members[0]->membership()->teks.front());
    EXPECT_TRUE(opens(keymat_of(members[1]->membership()->teks.front()), after));
    expect_cannot_decrypt("gm-c", after);
    EXPECT_FALSE(held["gm-c"].contains(server->status(7)->tek_spi));
}

TEST_F(gkm_key_tree, JoinerCannotDecryptDataSentBeforeItJoined)
{
    join("gm-a");
    join("gm-b");
    ASSERT_TRUE(drive([&] { return all_current({0, 1}); }));
    const packet before = seal_under(members[0]->membership()->teks.front());

    gkm::group_member& c = join("gm-c");
    ASSERT_TRUE(drive([&] { return all_current({0, 1, 2}); })) << c.last_error();
    ASSERT_EQ(c.membership()->teks.size(), 1u);
    expect_cannot_decrypt("gm-c", before);
    // The members from before moved to the joiner's TEK through the membership and TEK rekeys.
    const packet now = seal_under(c.membership()->teks.front());
    EXPECT_TRUE(opens(keymat_of(members[0]->membership()->teks.front()), now));
    EXPECT_GE(members[0]->counters().key_tree_rekeys, 1u);
}

TEST_F(gkm_key_tree, JoinsAndLeavesOfOneIntervalAreCommittedInOneBatch)
{
    start_gcks(tree_config(1000));
    gcks_time = clock::now();
    for (const char* id : {"gm-a", "gm-b", "gm-c", "gm-d"}) {
        join(id);
    }
    // Their GSA_AUTHs wait for the batch (the GCKS's clock stands still)...
    ASSERT_TRUE(drive([&] { return server->status(7)->key_tree_pending == 4; }));
    EXPECT_EQ(server->counters().membership_rekeys, 0u);
    *gcks_time += std::chrono::milliseconds(1000);  // ...and are answered at its end.
    ASSERT_TRUE(drive([&] { return all_current({0, 1, 2, 3}); }));
    EXPECT_EQ(server->counters().membership_rekeys, 1u);
    const packet first = seal_under(members[0]->membership()->teks.front());

    // Two leaves and two joins in the next interval.
    ASSERT_TRUE(server->set_members(7, {"gm-a", "gm-b", "gm-e", "gm-f"}).ok());
    join("gm-e");
    join("gm-f");
    ASSERT_TRUE(drive([&] { return server->status(7)->key_tree_pending == 4; }));
    *gcks_time += std::chrono::milliseconds(1000);
    ASSERT_TRUE(drive([&] {
        return all_current({0, 1, 4, 5}) && members[2]->state() == member_state::rejected &&
               members[3]->state() == member_state::rejected;
    }));
    EXPECT_EQ(server->counters().membership_rekeys, 2u);
    EXPECT_EQ(server->status(7)->key_tree_epoch, 2u);
    EXPECT_EQ(server->status(7)->members, 4u);
    EXPECT_EQ(members[0]->counters().key_tree_rekeys, 1u);
    EXPECT_EQ(members[0]->counters().reregistrations, 0u);

    const packet second = seal_under(members[4]->membership()->teks.front());
    for (const char* gone : {"gm-c", "gm-d"}) {
        expect_cannot_decrypt(gone, second);
    }
    for (const char* joiner : {"gm-e", "gm-f"}) {
        expect_cannot_decrypt(joiner, first);
    }
    EXPECT_TRUE(opens(keymat_of(members[1]->membership()->teks.front()), second));
}

TEST_F(gkm_key_tree, MembershipRekeySplitToTheMtuIsDeliveredAndApplied)
{
    constexpr size_t mtu = gsa_rekey_envelope_bytes + 100;  // two wrapped keys per part
    std::vector<size_t> sizes;  // GSA_REKEY datagrams the GCKS sent
    observer = [&sizes](datagram_direction d, const endpoint&, const endpoint&, byte_view data) {
        constexpr uint8_t gsa_rekey_exchange = 41;
        if (d == datagram_direction::sent && data.size() > 18 && data[18] == gsa_rekey_exchange) {
            sizes.push_back(data.size());
        }
    };
    gcks_config c = tree_config();
    c.groups[0].rekey_mtu = mtu;
    start_gcks(std::move(c));
    for (const std::string& id : all_ids) {
        join(id);
    }
    ASSERT_TRUE(drive([&] { return all_current({0, 1, 2, 3, 4, 5}); }));
    const uint64_t parts_before = server->counters().membership_rekey_parts;
    const uint32_t epoch = server->status(7)->key_tree_epoch;
    sizes.clear();
    ASSERT_EQ(server->evict("gm-f"), 1u);
    ASSERT_TRUE(drive([&] { return server->status(7)->key_tree_epoch == epoch + 1 && all_current({0, 1, 2, 3, 4}); }));
    EXPECT_GE(members[5]->counters().key_tree_failures, 1u);
    const uint64_t parts = server->counters().membership_rekey_parts - parts_before;
    EXPECT_GE(parts, 3u);
    // Each part went to the 6 members from before the batch, then the TEK rekey to the 5 left.
    ASSERT_EQ(sizes.size(), parts * 6 + 5);
    for (size_t i = 0; i < parts * 6; ++i) {
        EXPECT_LE(sizes[i], mtu - 28);  // IPv4 and UDP headers are 28 of the MTU
    }
    for (size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(members[i]->counters().reregistrations, 0u) << ids[i];
    }
}

TEST_F(gkm_key_tree, MulticastRekeysAreSentOnceAndReachEveryMember)
{
    gcks_config c = tree_config();
    const uint16_t port = uint16_t(20000 + random_bytes(2)[0] * 100 + random_bytes(1)[0] % 100);
    c.groups[0].rekey_address = endpoint{0xeffe4d01, port};  // 239.254.77.1
    c.groups[0].rekey_interface = 0x7f000001;              // IP_MULTICAST_IF 127.0.0.1: no route needed on lo
    start_gcks(std::move(c));
    join("gm-a");
    join("gm-b");
    gkm::group_member& gone = join("gm-c");
    ASSERT_TRUE(drive([&] { return all_current({0, 1, 2}); }));
    for (const auto& m : members) {
        EXPECT_GE(m->rekey_fd(), 0);
    }

    uint64_t sent = server->counters().rekeys_sent;
    ASSERT_TRUE(server->rekey(7).ok());
    EXPECT_EQ(server->counters().rekeys_sent, sent + 1);  // one datagram for the whole group
    ASSERT_TRUE(drive([&] { return all_current({0, 1, 2}); }));

    sent = server->counters().rekeys_sent;
    const uint64_t parts = server->counters().membership_rekey_parts;
    ASSERT_TRUE(server->set_members(7, {"gm-a", "gm-b"}).ok());
    ASSERT_TRUE(drive([&] { return all_current({0, 1}) && gone.state() == member_state::rejected; }));
    EXPECT_EQ(server->counters().rekeys_sent - sent, server->counters().membership_rekey_parts - parts + 1);
    expect_cannot_decrypt("gm-c", seal_under(members[0]->membership()->teks.front()));
}

TEST_F(gkm_key_tree, RestartKeepsTheTreeAndTheQueuedEviction)
{
    const std::string dir = [] {
        std::string d = (std::filesystem::temp_directory_path() / "gkm-tree-XXXXXX").string();
        EXPECT_NE(::mkdtemp(d.data()), nullptr);
        return d;
    }();
    const std::string key_path = dir + "/storage.key";
    std::ofstream(key_path, std::ios::trunc) << to_hex(random_bytes(32));
    ::chmod(key_path.c_str(), 0600);
    auto persistent = [&](uint16_t port) {
        gcks_config c = tree_config(1000);
        c.listen.port = port;
        c.state_path = dir + "/gcks.db";
        c.storage_key_path = key_path;
        return c;
    };
    start_gcks(persistent(0));
    gcks_time = clock::now();
    join("gm-a");
    join("gm-b");
    join("gm-c");
    ASSERT_TRUE(drive([&] { return server->status(7)->key_tree_pending == 3; }));
    *gcks_time += std::chrono::milliseconds(1000);
    ASSERT_TRUE(drive([&] { return all_current({0, 1, 2}); }));

    ASSERT_EQ(server->evict("gm-c"), 1u);
    const group_status before = *server->status(7);
    const uint16_t port = server->local().port;
    server.reset();  // before the batch commit: no shutdown, as after a crash
    start_gcks(persistent(port));
    const group_status after = *server->status(7);
    EXPECT_EQ(after.key_tree_epoch, before.key_tree_epoch);
    EXPECT_EQ(after.key_tree_pending, 1u);  // the eviction was queued again
    EXPECT_EQ(after.members, 3u);

    *gcks_time += std::chrono::milliseconds(1000);
    ASSERT_TRUE(drive([&] { return all_current({0, 1}) && members[2]->counters().key_tree_failures >= 1; }));
    EXPECT_EQ(server->status(7)->key_tree_epoch, before.key_tree_epoch + 1);
    for (size_t i = 0; i < 2; ++i) {  // path keys and KEK carried over the restart
        EXPECT_EQ(members[i]->counters().reregistrations, 0u) << ids[i];
        EXPECT_EQ(members[i]->counters().key_tree_rekeys, 1u) << ids[i];
    }
    std::filesystem::remove_all(dir);
}

TEST_F(gkm_key_tree, MemberThatMissesAPartReregistersAndCatchesUp)
{
    gcks_config c = tree_config();
    c.groups[0].rekey_mtu = gsa_rekey_envelope_bytes + 100;  // several parts per membership rekey
    start_gcks(std::move(c));
    for (const char* id : {"gm-a", "gm-b", "gm-c", "gm-d"}) {
        join(id);
    }
    ASSERT_TRUE(drive([&] { return all_current({0, 1, 2, 3}); }));
    const uint32_t epoch = server->status(7)->key_tree_epoch;
    ASSERT_EQ(server->evict("gm-d"), 1u);
    server->tick(clock::now());  // commits and sends the parts and the TEK rekey
    ASSERT_EQ(server->status(7)->key_tree_epoch, epoch + 1);
    uint8_t discard[2048];
    ASSERT_GT(::recv(members[0]->fd(), discard, sizeof discard, MSG_DONTWAIT), 0);  // gm-a loses part 0

    ASSERT_TRUE(drive([&] { return all_current({0, 1, 2}) && members[0]->counters().reregistrations >= 1; }))
        << members[0]->last_error();
    EXPECT_EQ(members[1]->counters().reregistrations, 0u);
    EXPECT_GE(members[0]->counters().rekeys_missed, 1u);
}
