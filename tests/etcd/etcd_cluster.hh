#pragma once
// A real 3-member etcd cluster on loopback ports for tests (issue [H]): tests/etcd (the client)
// and tests/gkm (cooperating key servers) start one per test.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "etcd/etcd.hh"

namespace msecgw::etcd::test {

using namespace std::chrono_literals;

inline const char* etcd_bin()
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

/// A gtest fixture: the cluster up (a write commits) before each test, `db` a client of all three.
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

} // namespace msecgw::etcd::test
