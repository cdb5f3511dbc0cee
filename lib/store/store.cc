#include "store.hh"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <system_error>
#include <utility>

#include "store_format.hh"

namespace msecgw::store {

namespace {

constexpr size_t max_file_size = 1 << 20; // 4096 lcore lines are ~170 KB

error io_error(const std::string& what, int err)
{
    return error{errc::io, what + ": " + std::system_category().message(err)};
}

/// Closes a descriptor on scope exit unless released.
class fd_guard {
public:
    explicit fd_guard(int fd) : _fd(fd) {}
    ~fd_guard()
    {
        if (_fd >= 0) {
            ::close(_fd);
        }
    }
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    int get() const { return _fd; }
    int release() { return std::exchange(_fd, -1); }

private:
    int _fd;
};

/// fsync of a directory, so that entries created or renamed in it survive a power loss.
result<void> sync_dir(const std::string& dir)
{
    fd_guard fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0 || ::fsync(fd.get()) != 0) {
        return io_error(dir + ": cannot fsync directory", errno);
    }
    return {};
}

/// Opens state_dir, creating it (one level, 0700) and making its entry durable when missing.
result<int> open_dir(const std::string& dir)
{
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
            return io_error(dir + ": cannot create state_dir", errno);
        }
        const size_t slash = dir.find_last_of('/');
        const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : dir.substr(0, slash);
        if (result<void> r = sync_dir(parent); !r) {
            return r.err();
        }
        fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (fd < 0) {
        return io_error(dir + ": cannot open state_dir", errno);
    }
    return fd;
}

result<int> lock_file(int dir_fd, const std::string& name, const std::string& shown)
{
    fd_guard fd(::openat(dir_fd, name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (fd.get() < 0) {
        return io_error(shown + ": cannot open lock file", errno);
    }
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        if (err == EWOULDBLOCK) {
            return error{errc::io, shown + ": IV store is open in another process or iv_store"};
        }
        return io_error(shown + ": cannot lock", err);
    }
    return fd.release();
}

using file_text = std::optional<std::string>;

/// Whole content of `name`, or nullopt when it does not exist.
result<file_text> read_file(int dir_fd, const std::string& name, const std::string& shown)
{
    fd_guard fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        return errno == ENOENT ? result<file_text>(file_text()) : io_error(shown + ": cannot open", errno);
    }
    std::string text;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return io_error(shown + ": cannot read", errno);
        }
        if (n == 0) {
            return file_text(std::move(text));
        }
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > max_file_size) {
            return error{errc::io, shown + ": corrupt: larger than " + std::to_string(max_file_size) + " bytes"};
        }
    }
}

result<void> write_all(int fd, std::string_view data)
{
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return error{errc::io, std::system_category().message(errno)};
        }
        data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
}

/// Write-to-temp protocol: tmp file written and fsynced, renamed over `name`, directory fsynced.
result<void> replace_file(int dir_fd, const std::string& name, const std::string& shown, std::string_view data)
{
    const std::string tmp = name + ".tmp";
    fd_guard fd(::openat(dir_fd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (fd.get() < 0) {
        return io_error(shown + ".tmp: cannot create", errno);
    }
    result<void> w = write_all(fd.get(), data);
    const bool ok = w && ::fsync(fd.get()) == 0 && ::close(fd.release()) == 0;
    if (!ok) {
        const int err = errno;
        ::unlinkat(dir_fd, tmp.c_str(), 0);
        return w ? io_error(shown + ".tmp: cannot write", err) : error{errc::io, shown + ".tmp: " + w.err().detail};
    }
    if (::renameat(dir_fd, tmp.c_str(), dir_fd, name.c_str()) != 0) {
        const int err = errno;
        ::unlinkat(dir_fd, tmp.c_str(), 0);
        return io_error(shown + ": cannot rename temp file over it", err);
    }
    if (::fsync(dir_fd) != 0) {
        return io_error(shown + ": cannot fsync state_dir", errno);
    }
    return {};
}

result<void> validate_args(std::string_view sa_id, uint32_t lcores, uint64_t counter_limit)
{
    if (!detail::valid_sa_id(sa_id)) {
        return error{errc::config_bad_value,
                     "IV store: bad SA id '" + std::string(sa_id) + "' (1..128 characters from [A-Za-z0-9._-])"};
    }
    if (lcores == 0 || lcores > iv_store::max_lcores) {
        return error{errc::config_bad_value, "IV store " + std::string(sa_id) + ": lcores must be 1.." +
                                                 std::to_string(iv_store::max_lcores)};
    }
    if (counter_limit == 0) {
        return error{errc::config_bad_value, "IV store " + std::string(sa_id) + ": counter_limit must be >= 1"};
    }
    return {};
}

/// Checks a parsed file against what the caller expects.
result<void> match_state(const detail::file_state& s, std::string_view sa_id, uint64_t limit, const std::string& shown)
{
    if (s.sa_id != sa_id) {
        return error{errc::io, shown + ": corrupt: file is for SA '" + s.sa_id + "', not '" + std::string(sa_id) + "'"};
    }
    if (s.limit != limit) {
        return error{errc::io, shown + ": counter limit " + std::to_string(s.limit) + " in the file, " +
                                   std::to_string(limit) +
                                   " now: the IV layout changed and nonces could repeat; rekey the SA"};
    }
    return {};
}

/// The parsed store file `name` in the directory `dir_fd`, or nothing when there is no file.
result<std::optional<detail::file_state>> read_state(int dir_fd, const std::string& name, const std::string& path)
{
    result<file_text> text = read_file(dir_fd, name, path);
    if (!text) {
        return text.err();
    }
    if (!text->has_value()) {
        return std::optional<detail::file_state>{};
    }
    result<detail::file_state> st = detail::parse(**text);
    if (!st) {
        return error{errc::io, path + ": corrupt: " + st.err().detail};
    }
    return std::optional<detail::file_state>{std::move(*st)};
}

} // namespace

result<iv_store> iv_store::open(const std::string& state_dir, std::string_view sa_id, uint32_t lcores,
                                uint64_t counter_limit, uint64_t floor)
{
    if (result<void> r = validate_args(sa_id, lcores, counter_limit); !r) {
        return r.err();
    }
    iv_store s;
    s._sa_id = std::string(sa_id);
    s._name = "iv-" + s._sa_id + ".store";
    s._path = state_dir + "/" + s._name;
    s._lcores = lcores;
    s._limit = counter_limit;
    result<int> dir = open_dir(state_dir);
    if (!dir) {
        return dir.err();
    }
    s._dir_fd = *dir;
    result<int> lock = lock_file(s._dir_fd, s._name + ".lock", s._path);
    if (!lock) {
        return lock.err();
    }
    s._lock_fd = *lock;
    // A leftover temp file is a write that crashed before its rename: the .store file is current.
    if (::unlinkat(s._dir_fd, (s._name + ".tmp").c_str(), 0) != 0 && errno != ENOENT) {
        return io_error(s._path + ".tmp: cannot remove leftover temp file", errno);
    }
    result<std::optional<detail::file_state>> st = read_state(s._dir_fd, s._name, s._path);
    if (!st) {
        return st.err();
    }
    if (st->has_value()) {
        if (result<void> m = match_state(**st, sa_id, counter_limit, s._path); !m) {
            return m.err();
        }
        s._high_water = std::move((*st)->high_water);
    }
    s._high_water.resize(std::max<size_t>(s._high_water.size(), lcores), 0);
    for (uint64_t& hw : s._high_water) {
        hw = std::max(hw, std::min(floor, counter_limit));
    }
    return s;
}

result<uint64_t> iv_store::peak(const std::string& state_dir, std::string_view sa_id)
{
    if (!detail::valid_sa_id(sa_id)) {
        return error{errc::config_bad_value, "IV store id '" + std::string(sa_id) + "' is not valid"};
    }
    const std::string name = "iv-" + std::string(sa_id) + ".store";
    const std::string path = state_dir + "/" + name;
    result<int> dir = open_dir(state_dir);
    if (!dir) {
        return dir.err();
    }
    result<std::optional<detail::file_state>> st = read_state(*dir, name, path);
    ::close(*dir);
    if (!st) {
        return st.err();
    }
    if (!st->has_value() || (*st)->high_water.empty()) {
        return uint64_t{0};
    }
    const std::vector<uint64_t>& marks = (*st)->high_water;
    return *std::max_element(marks.begin(), marks.end());
}

result<iv_block> iv_store::reserve(uint32_t lcore, uint64_t block_size)
{
    if (lcore >= _lcores || block_size == 0) {
        return error{errc::config_bad_value, _path + ": reserve(lcore " + std::to_string(lcore) + ", block " +
                                                 std::to_string(block_size) + "): lcore out of range or empty block"};
    }
    const uint64_t start = _high_water[lcore];
    if (start >= _limit) {
        return error{errc::unsupported, _path + ": IV counter space of lcore " + std::to_string(lcore) +
                                            " exhausted; the SA must stop sending and be rekeyed"};
    }
    const iv_block block{start, std::min(block_size, _limit - start)};
    _high_water[lcore] = start + block.count;
    if (result<void> r = persist(); !r) {
        _high_water[lcore] = start; // nothing handed out: a retry may reserve the same block
        return r.err();
    }
    return block;
}

uint64_t iv_store::high_water(uint32_t lcore) const
{
    return lcore < _high_water.size() ? _high_water[lcore] : 0;
}

result<void> iv_store::persist() const
{
    const detail::file_state st{_sa_id, _limit, _high_water};
    return replace_file(_dir_fd, _name, _path, detail::serialize(st));
}

iv_store::iv_store(iv_store&& other) noexcept
    : _sa_id(std::move(other._sa_id)),
      _path(std::move(other._path)),
      _name(std::move(other._name)),
      _dir_fd(std::exchange(other._dir_fd, -1)),
      _lock_fd(std::exchange(other._lock_fd, -1)),
      _lcores(other._lcores),
      _limit(other._limit),
      _high_water(std::move(other._high_water))
{
}

iv_store& iv_store::operator=(iv_store&& other) noexcept
{
    if (this != &other) {
        close_fds();
        _sa_id = std::move(other._sa_id);
        _path = std::move(other._path);
        _name = std::move(other._name);
        _dir_fd = std::exchange(other._dir_fd, -1);
        _lock_fd = std::exchange(other._lock_fd, -1);
        _lcores = other._lcores;
        _limit = other._limit;
        _high_water = std::move(other._high_water);
    }
    return *this;
}

iv_store::~iv_store() { close_fds(); }

void iv_store::close_fds()
{
    if (_lock_fd >= 0) {
        ::close(std::exchange(_lock_fd, -1)); // releases the flock
    }
    if (_dir_fd >= 0) {
        ::close(std::exchange(_dir_fd, -1));
    }
}

} // namespace msecgw::store
