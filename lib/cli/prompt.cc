#include "prompt.hh"

#include <cmdline.h>
#include <cmdline_parse.h>
#include <cmdline_parse_string.h>
#include <cmdline_socket.h>
#include <poll.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <sstream>

namespace msecgw::cli {

namespace {

constexpr std::size_t max_words = 4;

/// Where rte_cmdline writes what each token matched.
struct parsed_words {
    cmdline_fixed_string_t w[max_words];
    cmdline_multi_string_t rest;
};

/// Token spellings: "show" a fixed word, "a#b#c" a choice (completed with TAB), "*" any word,
/// "..." the rest of the line.
constexpr const char* any_word = "*";
constexpr const char* rest_of_line = "...";

void write_all(int fd, const std::string& s)
{
    std::size_t off = 0;
    while (off < s.size()) {
        const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n <= 0) {
            return;
        }
        off += static_cast<std::size_t>(n);
    }
}

} // namespace

/// An rte_cmdline instruction: cmdline_inst ends in a flexible array of token pointers, so it is
/// allocated with room for them; the tokens live beside it.
struct prompt::instruction {
    prompt* owner = nullptr;
    std::size_t fixed = 0;  ///< tokens stored in parsed_words::w
    bool rest = false;      ///< last token takes the rest of the line
    std::vector<cmdline_token_string> tokens;
    cmdline_inst* inst = nullptr;
    ~instruction() { std::free(inst); }
};

prompt::prompt(engine& e) : _engine(e) {}

void prompt::add(std::vector<const char*> spelling, const char* help)
{
    auto in = std::make_unique<instruction>();
    in->owner = this;
    in->tokens.resize(spelling.size());
    for (std::size_t i = 0; i < spelling.size(); ++i) {
        const std::string_view s = spelling[i];
        cmdline_token_string& t = in->tokens[i];
        t.hdr.ops = &cmdline_token_string_ops;
        if (s == rest_of_line) {
            t.hdr.offset = offsetof(parsed_words, rest);
            t.string_data.str = TOKEN_STRING_MULTI;
            in->rest = true;
        } else {
            t.hdr.offset = static_cast<unsigned>(offsetof(parsed_words, w) + in->fixed * sizeof(cmdline_fixed_string_t));
            t.string_data.str = s == any_word ? nullptr : spelling[i];
            ++in->fixed;
        }
    }
    in->inst = static_cast<cmdline_inst*>(
        std::calloc(1, sizeof(cmdline_inst) + (spelling.size() + 1) * sizeof(cmdline_parse_token_hdr_t*)));
    in->inst->f = &prompt::on_command;
    in->inst->data = in.get();
    in->inst->help_str = help;
    for (std::size_t i = 0; i < spelling.size(); ++i) {
        in->inst->tokens[i] = &in->tokens[i].hdr;
    }
    in->inst->tokens[spelling.size()] = nullptr;
    _insts.push_back(std::move(in));
}

void prompt::on_command(void* parsed, cmdline* cl, void* data)
{
    auto* in = static_cast<instruction*>(data);
    const auto* p = static_cast<const parsed_words*>(parsed);
    std::vector<std::string> words;
    for (std::size_t i = 0; i < in->fixed; ++i) {
        words.emplace_back(p->w[i]);
    }
    if (in->rest) {
        std::istringstream rest(p->rest);
        for (std::string w; rest >> w;) {
            words.push_back(w);
        }
    }
    const bool quit = !words.empty() && (words[0] == "quit" || words[0] == "exit");
    const reply r = in->owner->_engine.run(std::move(words));
    write_all(r.code == status::ok ? STDOUT_FILENO : STDERR_FILENO, r.text);
    if (quit && r.code == status::ok) {
        in->owner->_left = true;
        cmdline_quit(cl);
    }
}

result<std::unique_ptr<prompt>> prompt::open(engine& e)
{
    if (::isatty(STDIN_FILENO) != 1) {
        return error{errc::unsupported, "--interactive: stdin is not a terminal (use --cli-socket and msecgw-cli)"};
    }
    std::unique_ptr<prompt> p(new prompt(e));
    p->add({"help"}, "help: list every command");
    p->add({"show", "port#sa#policy#group#stats#drops#lcore#log"}, "show port|sa|policy|group|stats|drops|lcore|log");
    p->add({"show", "port#sa#policy#group#stats#drops#lcore#log", rest_of_line}, "show <object> --json");
    p->add({"clear", "stats"}, "clear stats: restart the CLI's counters from zero");
    p->add({"set", "log", any_word, "emerg#alert#crit#err#warning#notice#info#debug"},
           "set log <type> <level>: rte_log level of a type (see show log)");
    p->add({"add", "sa#policy", rest_of_line}, "add sa KEY=VALUE… | add policy [at=N] KEY=VALUE… (see help)");
    p->add({"del", "sa#policy", any_word}, "del sa <name> | del policy <N>");
    p->add({"rekey", "group", any_word}, "rekey group <group>");
    p->add({"quit"}, "quit: drain the workers and exit");
    for (auto& in : p->_insts) {
        p->_ctx.push_back(in->inst);
    }
    p->_ctx.push_back(nullptr);
    p->_cl = cmdline_stdin_new(p->_ctx.data(), "msecgw> ");
    if (p->_cl == nullptr) {
        return error{errc::dpdk, "--interactive: rte_cmdline could not take the terminal"};
    }
    return p;
}

prompt::~prompt()
{
    if (_cl != nullptr) {
        cmdline_stdin_exit(_cl); // restores the terminal settings and frees the cmdline
    }
}

void prompt::poll()
{
    if (_closed) {
        return;
    }
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    while (::poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLIN | POLLHUP)) != 0) {
        char buf[256];
        const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n <= 0) {
            _closed = true;
            write_all(STDOUT_FILENO, "\n");
            return;
        }
        cmdline_in(_cl, buf, static_cast<int>(n));
        if (_left) {
            _closed = true;
            return;
        }
    }
}

} // namespace msecgw::cli
