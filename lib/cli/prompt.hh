#pragma once
/// `--interactive`: the CLI on the terminal through DPDK's rte_cmdline (line editing, history,
/// TAB completion of commands and objects, `?` for help), fed from the control loop: poll() reads
/// only what stdin has ready and never blocks.

#include <memory>
#include <vector>

#include "commands.hh"

struct cmdline;
struct cmdline_inst;

namespace msecgw::cli {

class prompt {
public:
    /// Takes over the terminal (raw mode until destroyed). stdin must be a terminal.
    static result<std::unique_ptr<prompt>> open(engine& e);
    ~prompt(); ///< restores the terminal
    prompt(const prompt&) = delete;
    prompt& operator=(const prompt&) = delete;

    void poll();
    /// stdin ended (EOF) or the prompt was left: the gateway keeps running.
    bool closed() const { return _closed; }

    struct instruction; ///< one rte_cmdline instruction and its tokens

private:
    explicit prompt(engine& e);
    void add(std::vector<const char*> tokens, const char* help);
    static void on_command(void* parsed, cmdline* cl, void* data);

    engine& _engine;
    std::vector<std::unique_ptr<instruction>> _insts;
    std::vector<cmdline_inst*> _ctx; ///< NULL-terminated, what rte_cmdline walks
    cmdline* _cl = nullptr;
    bool _closed = false;
    bool _left = false; ///< `quit` was typed
};

} // namespace msecgw::cli
