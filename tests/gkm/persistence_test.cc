// GCKS state in SQLite: a restart (the object destroyed without any shutdown, or the process
// killed with SIGKILL) keeps groups, the TEK, the KEK, the signing key and member addresses, and
// never reuses a TEK SPI, a Sender-ID or a GSA_REKEY Message ID. Keys are only stored wrapped.

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "gkm/store.hh"
#include "loopback_fixture.hh"

using namespace msecgw;
using namespace msecgw::gkm;
using namespace msecgw::gkm::test;

namespace {

std::string make_temp_dir()
{
    std::string dir = (std::filesystem::temp_directory_path() / "gkm-state-XXXXXX").string();
    EXPECT_NE(::mkdtemp(dir.data()), nullptr);
    return dir;
}

void write_file(const std::string& path, const std::string& text, mode_t mode)
{
    std::ofstream(path, std::ios::trunc) << text;
    ::chmod(path.c_str(), mode);
}

bytes read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    return bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool contains(const bytes& haystack, byte_view needle)
{
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

} // namespace

class gkm_persistence : public gkm_loopback {
protected:
    void SetUp() override
    {
        dir = make_temp_dir();
        key_path = dir + "/storage.key";
        write_file(key_path, to_hex(random_bytes(storage_key_bytes)), 0600);
        start_gcks(persistent_config());
    }

    void TearDown() override { std::filesystem::remove_all(dir); }

    gcks_config persistent_config(uint16_t port = 0)
    {
        gcks_config c = default_gcks_config();
        c.listen.port = port;
        c.state_path = dir + "/gcks.db";
        c.storage_key_path = key_path;
        return c;
    }

    member_config signed_member(const std::string& id)
    {
        member_config c = member(id);
        c.gcks_public_key = server->rekey_public_key();
        return c;
    }

    uint64_t accepted() const
    {
        uint64_t n = 0;
        for (const auto& m : members) {
            n += m->counters().rekeys_accepted;
        }
        return n;
    }

    static constexpr size_t storage_key_bytes = 32;
    std::string dir;
    std::string key_path;
};

TEST_F(gkm_persistence, RestartKeepsTheGroupAndMembersAndNeverReusesSpiSenderIdOrMessageId)
{
    add_member(signed_member("gm-a"));
    add_member(signed_member("gm-b"));
    run_registrations();
    ASSERT_EQ(members[0]->state(), member_state::registered) << members[0]->last_error();
    ASSERT_EQ(members[1]->state(), member_state::registered) << members[1]->last_error();
    std::set<uint32_t> spis{members[0]->membership()->teks[0].spi};
    std::set<uint32_t> sender_ids{*members[0]->membership()->sender_id, *members[1]->membership()->sender_id};
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(server->rekey(7).ok());
        spis.insert(server->status(7)->tek_spi);
    }
    ASSERT_TRUE(pump([&] { return accepted() == 4; }));
    const group_status before = *server->status(7);
    const bytes public_key = server->rekey_public_key();
    const uint16_t port = server->local().port;

    server.reset();  // no shutdown: whatever is on disk is what a crash leaves
    {
        result<secret> key = load_storage_key(key_path);
        ASSERT_TRUE(key.ok()) << key.err().detail;
        result<gcks_store> store = gcks_store::open(dir + "/gcks.db", std::move(*key));
        ASSERT_TRUE(store.ok()) << store.err().detail;
        result<std::vector<gcks_store::sender_assignment>> assigned = store->sender_ids(7);
        ASSERT_TRUE(assigned.ok());
        ASSERT_EQ(assigned->size(), 2u);
        std::set<std::string> who;
        for (const auto& a : *assigned) {
            EXPECT_EQ(sender_ids.count(a.sender_id), 1u);
            who.insert(a.identity);
        }
        EXPECT_EQ(who, (std::set<std::string>{"gm-a", "gm-b"}));
    }
    start_gcks(persistent_config(port));
    const group_status after = *server->status(7);
    EXPECT_EQ(after.tek_spi, before.tek_spi);
    EXPECT_EQ(after.next_rekey_message_id, before.next_rekey_message_id);
    EXPECT_GT(after.next_sender_id, *sender_ids.rbegin());
    EXPECT_EQ(after.members, 2u);
    EXPECT_EQ(server->rekey_public_key(), public_key);

    // Members registered with the old process accept the new one's rekeys (the one it sends at
    // its first tick, then another): same KEK, same signing key, Message IDs above every earlier one.
    ASSERT_TRUE(pump([&] { return accepted() == 6; }));
    EXPECT_EQ(server->counters().restart_rekeys, 1u);
    spis.insert(before.tek_spi);
    EXPECT_EQ(spis.count(server->status(7)->tek_spi), 0u);
    spis.insert(server->status(7)->tek_spi);
    ASSERT_TRUE(server->rekey(7).ok());
    ASSERT_TRUE(pump([&] { return accepted() == 8; }));
    EXPECT_EQ(members[0]->counters().rekeys_replayed + members[0]->counters().rekeys_forged, 0u);
    const uint32_t current = server->status(7)->tek_spi;
    EXPECT_EQ(spis.count(current), 0u);
    EXPECT_EQ(members[1]->membership()->teks[0].spi, current);

    gkm::group_member& late = add_member(signed_member("gm-a"));
    run_registrations();
    ASSERT_EQ(late.state(), member_state::registered) << late.last_error();
    EXPECT_EQ(late.membership()->teks[0].spi, current);
    EXPECT_EQ(sender_ids.count(*late.membership()->sender_id), 0u);
}

// A crash between committing a rekey's TEK and sending its GSA_REKEY leaves a TEK no member got:
// the restarted key server replaces it with a rekey at its first tick, so the members it had and
// the ones registering after the restart share a TEK again.
TEST_F(gkm_persistence, ATekCommittedJustBeforeACrashIsReplacedByARekeyAtStart)
{
    add_member(signed_member("gm-a"));
    run_registrations();
    ASSERT_EQ(members[0]->state(), member_state::registered) << members[0]->last_error();
    const uint16_t port = server->local().port;
    server.reset();
    constexpr uint32_t never_sent = 0x7e570001;
    {
        result<secret> key = load_storage_key(key_path);
        ASSERT_TRUE(key.ok()) << key.err().detail;
        result<gcks_store> store = gcks_store::open(dir + "/gcks.db", std::move(*key));
        ASSERT_TRUE(store.ok()) << store.err().detail;
        result<std::optional<stored_group>> g = store->load_group(7);
        ASSERT_TRUE(g.ok() && g->has_value());
        (*g)->tek_spi = never_sent;
        (*g)->tek_keymat = random_secret((*g)->tek_keymat.size());
        ASSERT_TRUE(store->save_group(**g).ok());
    }
    start_gcks(persistent_config(port));
    ASSERT_TRUE(pump([&] { return accepted() == 1; }));
    EXPECT_EQ(server->counters().restart_rekeys, 1u);
    const uint32_t current = server->status(7)->tek_spi;
    EXPECT_NE(current, never_sent);
    EXPECT_EQ(members[0]->membership()->teks[0].spi, current);
    gkm::group_member& late = add_member(signed_member("gm-b"));
    run_registrations();
    ASSERT_EQ(late.state(), member_state::registered) << late.last_error();
    EXPECT_EQ(late.membership()->teks[0].spi, current);
}

TEST_F(gkm_persistence, SigkillOfTheGcksProcessReusesNothing)
{
    server.reset();
    int report[2];
    ASSERT_EQ(::pipe(report), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // The key server in its own process: one member registers, three rekeys, then it
        // reports what it handed out and waits to be killed.
        ::close(report[0]);
        start_gcks(persistent_config());
        add_member(signed_member("gm-a"));
        run_registrations();
        uint32_t out[5] = {members[0]->state() == member_state::registered ? *members[0]->membership()->sender_id : 0};
        out[1] = server->status(7)->tek_spi;
        for (int i = 0; i < 3; ++i) {
            out[2 + i] = server->rekey(7).ok() ? server->status(7)->tek_spi : 0;
        }
        if (::write(report[1], out, sizeof out) != ssize_t(sizeof out)) {
            ::_exit(1);
        }
        ::pause();
        ::_exit(0);
    }
    ::close(report[1]);
    uint32_t got[5] = {};
    ASSERT_EQ(::read(report[0], got, sizeof got), ssize_t(sizeof got));
    ::close(report[0]);
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status));
    ASSERT_NE(got[0], 0u) << "the child's member did not register";
    const std::set<uint32_t> spis(got + 1, got + 5);
    ASSERT_EQ(spis.size(), 4u);

    start_gcks(persistent_config());
    const group_status after = *server->status(7);
    EXPECT_EQ(after.tek_spi, got[4]);
    EXPECT_EQ(after.next_rekey_message_id, 4u);  // 1, 2 and 3 went out before the kill
    EXPECT_GT(after.next_sender_id, got[0]);
    ASSERT_TRUE(server->rekey(7).ok());
    EXPECT_EQ(spis.count(server->status(7)->tek_spi), 0u);
    EXPECT_EQ(server->status(7)->next_rekey_message_id, 5u);

    gkm::group_member& m = add_member(signed_member("gm-b"));
    run_registrations();
    ASSERT_EQ(m.state(), member_state::registered) << m.last_error();
    EXPECT_GT(*m.membership()->sender_id, got[0]);
    EXPECT_EQ(m.membership()->teks[0].spi, server->status(7)->tek_spi);
}

TEST_F(gkm_persistence, KeysAreStoredOnlyWrapped)
{
    add_member(signed_member("gm-a"));
    run_registrations();
    ASSERT_EQ(members[0]->state(), member_state::registered) << members[0]->last_error();
    ASSERT_TRUE(server->rekey(7).ok());
    ASSERT_TRUE(pump([&] { return accepted() == 1; }));
    const group_membership* m = members[0]->membership();
    ASSERT_EQ(m->teks.size(), 2u);
    bytes on_disk;
    for (const char* suffix : {"", "-wal"}) {
        bytes f = read_file(dir + "/gcks.db" + suffix);
        on_disk.insert(on_disk.end(), f.begin(), f.end());
    }
    ASSERT_FALSE(on_disk.empty());
    for (const tek& t : m->teks) {
        EXPECT_FALSE(contains(on_disk, t.key.view()));
    }
    struct stat st {};
    ASSERT_EQ(::stat((dir + "/gcks.db").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u);
}

TEST_F(gkm_persistence, AnotherStorageKeyDoesNotOpenTheState)
{
    server.reset();
    write_file(key_path, to_hex(random_bytes(storage_key_bytes)), 0600);
    result<std::unique_ptr<gcks>> g = gcks::create(persistent_config());
    ASSERT_FALSE(g.ok());
    EXPECT_NE(g.err().detail.find("storage key does not open"), std::string::npos) << g.err().detail;
}

TEST_F(gkm_persistence, StorageKeyReadableByOthersOrMissingIsRefused)
{
    server.reset();
    ::chmod(key_path.c_str(), 0644);
    EXPECT_FALSE(gcks::create(persistent_config()).ok());
    gcks_config no_key = persistent_config();
    no_key.storage_key_path.clear();
    EXPECT_FALSE(gcks::create(no_key).ok());
}
