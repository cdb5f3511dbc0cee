// lib/etcd against a real 3-member etcd cluster on loopback ports (issue [H]): key/value and
// transactions, the monotonic allocator under contention and across a lost member, the leader
// election (take-over after a leader stops renewing, clean resignation), and no quorum = a
// clear error instead of a wrong answer.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <thread>

#include "etcd/etcd.hh"

using namespace msecgw;
using namespace std::chrono_literals;

namespace {

const char* etcd_bin()
{
    return "/usr/bin/etcd"; // Debian's etcd-server
}

/// Three etcd processes on 127.0.0.1, ports from a per-process base; killed at the end.
class cluster {
public:
    cluster()
    {
        const int base = 30000 + (getpid() % 500) * 20;
        dir = std::filesystem::temp_directory_path() / ("msecgw-etcd-" + std::to_string(getpid()));
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
        std::string initial;
        for (int i = 0; i < 3; ++i) {
            client_url[i] = "http://127.0.0.1:" + std::to_string(base + i);
            peer_url[i] = "http://127.0.0.1:" + std::to_string(base + 10 + i);
            if (i != 0) {
                initial += ',';
            }
            initial.append("n").append(std::to_string(i)).append("=").append(peer_url[i]);
        }
        for (int i = 0; i < 3; ++i) {
            start(i, initial);
        }
    }
    ~cluster()
    {
        for (int i = 0; i < 3; ++i) {
            stop(i);
        }
        std::filesystem::remove_all(dir);
    }

    void start(int i, const std::string& initial)
    {
        std::string name = "n";
        name += static_cast<char>('0' + i);
        const std::string data = (dir / name).string();
        const std::string log = (dir / (name + ".log")).string();
        pid[i] = fork();
        if (pid[i] == 0) {
            FILE* f = freopen(log.c_str(), "w", stderr);
            (void)f;
            execl(etcd_bin(), "etcd", "--name", name.c_str(), "--data-dir", data.c_str(), "--listen-client-urls",
                  client_url[i].c_str(), "--advertise-client-urls", client_url[i].c_str(), "--listen-peer-urls",
                  peer_url[i].c_str(), "--initial-advertise-peer-urls", peer_url[i].c_str(), "--initial-cluster",
                  initial.c_str(), "--initial-cluster-state", "new", "--heartbeat-interval", "50",
                  "--election-timeout", "500", nullptr);
            _exit(127);
        }
    }
    void stop(int i)
    {
        if (pid[i] > 0) {
            kill(pid[i], SIGKILL);
            waitpid(pid[i], nullptr, 0);
            pid[i] = -1;
        }
    }
    std::vector<std::string> endpoints() const { return {client_url[0], client_url[1], client_url[2]}; }

    std::filesystem::path dir;
    std::string client_url[3];
    std::string peer_url[3];
    pid_t pid[3] = {-1, -1, -1};
};

class etcd_cluster : public ::testing::Test {
protected:
    void SetUp() override
    {
        ASSERT_TRUE(std::filesystem::exists(etcd_bin())) << "etcd is not installed (scripts/install-deps.sh installs etcd-server)";
        c = std::make_unique<cluster>();
        auto cl = etcd::client::create(c->endpoints(), 500ms);
        ASSERT_TRUE(cl.ok());
        db = std::move(cl.value());
        // Ready when a write commits (a leader was elected).
        for (int i = 0; i < 100; ++i) {
            if (db->put("/msecgw/test/ready", "1").ok()) {
                return;
            }
            std::this_thread::sleep_for(100ms);
        }
        FAIL() << "etcd cluster did not come up (logs in " << c->dir << ")";
    }

    std::unique_ptr<cluster> c;
    std::unique_ptr<etcd::client> db;
};

} // namespace

TEST_F(etcd_cluster, PutGetRangeAndTransactions)
{
    ASSERT_TRUE(db->put("/g/1/tek", std::string("\x00\x01\xff key", 7)).ok());
    ASSERT_TRUE(db->put("/g/2/tek", "b").ok());
    auto v = db->get("/g/1/tek");
    ASSERT_TRUE(v.ok() && v->has_value());
    EXPECT_EQ((*v)->value, std::string("\x00\x01\xff key", 7)) << "binary values survive base64";
    auto none = db->get("/g/3/tek");
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
    auto all = db->range("/g/");
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->size(), 2u);
    EXPECT_EQ((*all)[1].key, "/g/2/tek");

    auto t1 = db->txn({etcd::compare::absent("/g/1/tek")}, {etcd::operation::put("/g/1/tek", "x")});
    ASSERT_TRUE(t1.ok());
    EXPECT_FALSE(t1->succeeded) << "create-if-absent on an existing key fails";
    auto t2 = db->txn({etcd::compare::value_is("/g/2/tek", "b")}, {etcd::operation::put("/g/2/tek", "c")});
    ASSERT_TRUE(t2.ok());
    EXPECT_TRUE(t2->succeeded);
    EXPECT_EQ((*db->get("/g/2/tek"))->value, "c");
}

TEST_F(etcd_cluster, LeasedKeysVanishWhenTheLeaseExpires)
{
    auto lease = db->lease_grant(1);
    ASSERT_TRUE(lease.ok()) << lease.err().detail;
    ASSERT_TRUE(db->put("/leased", "v", *lease).ok());
    EXPECT_TRUE(db->lease_keepalive(*lease).ok());
    std::this_thread::sleep_for(2500ms);
    auto v = db->get("/leased");
    ASSERT_TRUE(v.ok());
    EXPECT_FALSE(v->has_value());
    EXPECT_EQ(db->lease_keepalive(*lease).err().code, errc::config_reference) << "an expired lease is reported";
}

TEST_F(etcd_cluster, AllocatorNeverHandsOutAValueTwiceUnderContention)
{
    // Four key servers reserving blocks at once, through different endpoints.
    constexpr int holders = 4, blocks = 40;
    std::vector<std::vector<uint64_t>> got(holders);
    std::vector<std::thread> threads;
    for (int h = 0; h < holders; ++h) {
        threads.emplace_back([&, h] {
            auto eps = c->endpoints();
            std::rotate(eps.begin(), eps.begin() + h % 3, eps.end());
            auto cl = etcd::client::create(eps, 2000ms);
            etcd::allocator a(**cl, "/msecgw/alloc/spi");
            for (int b = 0; b < blocks; ++b) {
                auto first = a.reserve(8, 256);
                if (first.ok()) {
                    got[h].push_back(*first);
                }
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    std::set<uint64_t> values;
    size_t n = 0;
    for (const auto& g : got) {
        EXPECT_EQ(g.size(), static_cast<size_t>(blocks));
        for (uint64_t first : g) {
            for (uint64_t v = first; v < first + 8; ++v) {
                values.insert(v);
                ++n;
            }
        }
    }
    EXPECT_EQ(values.size(), n) << "a value was handed out twice";
    EXPECT_EQ(*values.begin(), 256u);
    EXPECT_EQ(*values.rbegin(), 256u + n - 1) << "blocks are contiguous: nothing skipped either";
}

TEST_F(etcd_cluster, LosingOneMemberChangesNothingLosingTwoStopsWithAClearError)
{
    etcd::allocator a(*db, "/msecgw/alloc/sid");
    auto first = a.reserve(10);
    ASSERT_TRUE(first.ok());
    c->stop(0);
    auto second = a.reserve(10);
    ASSERT_TRUE(second.ok()) << second.err().detail;
    EXPECT_EQ(*second, *first + 10);
    c->stop(1);
    auto third = a.reserve(10);
    ASSERT_FALSE(third.ok()) << "no quorum must not hand out values";
    EXPECT_EQ(third.err().code, errc::io);
    EXPECT_NE(third.err().detail.find("quorum"), std::string::npos) << third.err().detail;
}

TEST_F(etcd_cluster, AStandbyTakesOverWhenTheLeaderStopsRenewing)
{
    auto cl_b = etcd::client::create(c->endpoints(), 500ms);
    etcd::election a(*db, "/msecgw/leader", "ks-a", 1);
    etcd::election b(**cl_b, "/msecgw/leader", "ks-b", 1);
    ASSERT_TRUE(a.step().value());
    EXPECT_FALSE(b.step().value());
    EXPECT_EQ(a.leader().value(), std::optional<std::string>("ks-a"));
    // a renews: b never gets it.
    for (int i = 0; i < 6; ++i) {
        std::this_thread::sleep_for(300ms);
        ASSERT_TRUE(a.step().value());
        ASSERT_FALSE(b.step().value());
    }
    // a stops (a kill -9 or a pause): within the TTL plus a step, b leads.
    bool took = false;
    for (int i = 0; i < 20 && !took; ++i) {
        std::this_thread::sleep_for(200ms);
        took = b.step().value();
    }
    EXPECT_TRUE(took);
    // a comes back from its pause: it finds its lease gone and does not lead.
    auto again = a.step();
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(*again);
    EXPECT_EQ(a.leader().value(), std::optional<std::string>("ks-b"));
    // A clean stop hands over without waiting for the TTL.
    b.resign();
    EXPECT_TRUE(a.step().value());
}
