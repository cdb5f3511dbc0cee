// main() for unit tests that need DPDK's EAL: no hugepages, no PCI, a private file prefix.
#include <gtest/gtest.h>
#include <rte_eal.h>

#include <string>
#include <unistd.h>

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    std::string prefix = "--file-prefix=msecgw_ut_" + std::to_string(getpid());
    const char* eal_argv[] = {"unit-test", "--no-huge", "--no-pci", "-m", "256", "--no-shconf",
                              "-l", "0", "--log-level", "lib.eal:error", prefix.c_str()};
    int eal_argc = sizeof(eal_argv) / sizeof(eal_argv[0]);
    if (rte_eal_init(eal_argc, const_cast<char**>(eal_argv)) < 0) {
        return 2;
    }
    int rc = RUN_ALL_TESTS();
    rte_eal_cleanup();
    return rc;
}
