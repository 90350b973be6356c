/* core.open_fd: a file descriptor the file ledger keeps open for its life,
   so that a write costs a flock, a write and an fsync, not an open and close
   of the lock file and the ledger each time. Also the ledger's claims: 1-byte
   open-file-description locks (F_OFD_SETLK, Linux >= 3.15) in one file.

   OFD locks, unlike classic POSIX fcntl locks, belong to the open file
   description, not to the process: closing some other descriptor of the same
   file does not drop them, and two descriptions (two opens, even in one
   process) conflict with each other. The kernel drops them when the last
   descriptor of the description closes, so a killed holder never keeps one. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compat.h"
#include "core.h"
#include "options.h"

/* Linux's values (include/uapi/asm-generic/fcntl.h); glibc defines them only
   with _GNU_SOURCE. */
#if defined(__linux__) && !defined(F_OFD_SETLK)
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#endif

#define MR_FD_MT "maintenance_report.fd"

/* Reads go through buf (pread, then copied into a luaL_Buffer): a 15 KB
   report line in one or two reads, whatever the interpreter's LUAL_BUFFERSIZE. */
typedef struct {
    int fd; /* -1 once closed */
    char buf[16384];
} mr_fd;

static int push_errno_fd(lua_State *L, const char *what, int e)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, strerror(e));
    return 2;
}

static mr_fd *check_open(lua_State *L)
{
    mr_fd *h = luaL_checkudata(L, 1, MR_FD_MT);
    if (h->fd < 0)
        luaL_error(L, "the descriptor is closed");
    return h;
}

/* Offsets come from Lua numbers: whole, not negative, below 2^53 (exact in a double). */
static off_t check_offset(lua_State *L, int arg)
{
    lua_Number n = luaL_checknumber(L, arg);
    if (!(n >= 0 && n < 9007199254740992.0) || n != (lua_Number)(long long)n)
        luaL_argerror(L, arg, "not an offset");
    return (off_t)n;
}

/* open_fd(path, create) → fd | nil, err, "missing" (no such file) | nil, err.
   Read-write and O_APPEND (writes go to the end whatever the offset); read-only
   when the file may not be written (a dry run's ledger). create: O_CREAT, 0600. */
static int l_open_fd(lua_State *L)
{
    const char *path = mr_check_text(L, 1, NULL);
    int create = lua_toboolean(L, 2);
    mr_fd *h = lua_newuserdata(L, sizeof *h); /* before the open: no fd leaks on a memory error */
    h->fd = -1;
    luaL_getmetatable(L, MR_FD_MT);
    lua_setmetatable(L, -2);
    h->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (h->fd < 0 && (errno == EACCES || errno == EROFS))
        h->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (h->fd < 0) {
        int e = errno;
        push_errno_fd(L, path, e);
        if (e == ENOENT) {
            lua_pushliteral(L, "missing");
            return 3;
        }
        return 2;
    }
    return 1;
}

static int l_fd_close(lua_State *L)
{
    mr_fd *h = luaL_checkudata(L, 1, MR_FD_MT);
    if (h->fd >= 0) {
        close(h->fd);
        h->fd = -1;
    }
    return 0;
}

static int l_fd_tostring(lua_State *L)
{
    mr_fd *h = luaL_checkudata(L, 1, MR_FD_MT);
    if (h->fd >= 0)
        lua_pushfstring(L, MR_FD_MT " (%d)", h->fd);
    else
        lua_pushliteral(L, MR_FD_MT " (closed)");
    return 1;
}

static void push_identity(lua_State *L, const struct stat *st)
{
    char id[64];
    snprintf(id, sizeof id, "%llu:%llu", (unsigned long long)st->st_dev, (unsigned long long)st->st_ino);
    lua_pushstring(L, id);
    mr_push_integer(L, (long long)st->st_size);
}

/* fd:identity() → "<dev>:<inode>", size | nil, err */
static int l_fd_identity(lua_State *L)
{
    mr_fd *h = check_open(L);
    struct stat st;
    if (fstat(h->fd, &st) != 0)
        return push_errno_fd(L, "fstat", errno);
    push_identity(L, &st);
    return 2;
}

/* file_identity(path) → "<dev>:<inode>", size | nil, err, "missing" | nil, err: one stat,
   for noticing that another process replaced the file (a compaction's rename). */
static int l_file_identity(lua_State *L)
{
    const char *path = mr_check_text(L, 1, NULL);
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        push_errno_fd(L, path, e);
        if (e == ENOENT) {
            lua_pushliteral(L, "missing");
            return 3;
        }
        return 2;
    }
    push_identity(L, &st);
    return 2;
}

/* fd:lock() → true | nil, err, "busy" | nil, err: an exclusive flock, not waiting. */
static int l_fd_lock(lua_State *L)
{
    mr_fd *h = check_open(L);
    while (flock(h->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EINTR)
            continue;
        push_errno_fd(L, "flock", e);
        if (e == EWOULDBLOCK) {
            lua_pushliteral(L, "busy");
            return 3;
        }
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* fd:unlock() → true | nil, err */
static int l_fd_unlock(lua_State *L)
{
    mr_fd *h = check_open(L);
    while (flock(h->fd, LOCK_UN) != 0) {
        if (errno != EINTR)
            return push_errno_fd(L, "flock", errno);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* fd:append(data [, sync]) → true | nil, err: written at the end (O_APPEND), and
   fsync'd before it returns unless sync is false. */
static int l_fd_append(lua_State *L)
{
    mr_fd *h = check_open(L);
    size_t len, done = 0;
    const char *data = luaL_checklstring(L, 2, &len);
    int sync = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
    while (done < len) {
        ssize_t n = write(h->fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return push_errno_fd(L, "write", errno);
        done += (size_t)n;
    }
    if (sync && fsync(h->fd) != 0)
        return push_errno_fd(L, "fsync", errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* Reads [offset, offset + len) into b, stopping early at the end of the file;
   with stop_at_newline, after the first '\n' (which is not kept). 0 or errno. */
static int read_range(mr_fd *h, luaL_Buffer *b, off_t offset, size_t len, int stop_at_newline)
{
    size_t done = 0;
    while (done < len) {
        size_t want = len - done;
        ssize_t n;
        if (want > sizeof h->buf)
            want = sizeof h->buf;
        n = pread(h->fd, h->buf, want, offset + (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            break;
        if (stop_at_newline) {
            char *nl = memchr(h->buf, '\n', (size_t)n);
            if (nl != NULL) {
                luaL_addlstring(b, h->buf, (size_t)(nl - h->buf));
                return 0;
            }
        }
        luaL_addlstring(b, h->buf, (size_t)n);
        done += (size_t)n;
    }
    return 0;
}

/* fd:read(offset, length) → the bytes there (fewer at the end of the file) | nil, err */
static int l_fd_read(lua_State *L)
{
    mr_fd *h = check_open(L);
    off_t offset = check_offset(L, 2);
    lua_Number n = luaL_checknumber(L, 3);
    luaL_Buffer b;
    int e;
    if (!(n >= 0 && n <= (lua_Number)(SIZE_MAX / 2)))
        return luaL_argerror(L, 3, "not a length");
    luaL_buffinit(L, &b);
    e = read_range(h, &b, offset, (size_t)n, 0);
    if (e != 0)
        return push_errno_fd(L, "pread", e);
    luaL_pushresult(&b);
    return 1;
}

/* fd:read_line(offset) → the line starting there, without its newline (to the end
   of the file when it has none) | nil, err */
static int l_fd_read_line(lua_State *L)
{
    mr_fd *h = check_open(L);
    off_t offset = check_offset(L, 2);
    luaL_Buffer b;
    int e;
    luaL_buffinit(L, &b);
    e = read_range(h, &b, offset, SIZE_MAX / 2, 1);
    if (e != 0)
        return push_errno_fd(L, "pread", e);
    luaL_pushresult(&b);
    return 1;
}

#ifdef F_OFD_SETLK
static int ofd_set(mr_fd *h, short type, off_t offset)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = offset;
    fl.l_len = 1;
    fl.l_pid = 0; /* must be 0 for OFD locks */
    while (fcntl(h->fd, F_OFD_SETLK, &fl) != 0) {
        if (errno != EINTR)
            return errno;
    }
    return 0;
}
#endif

/* fd:range_lock(offset) → true | false (another open of the file holds that byte) | nil, err:
   an exclusive OFD write lock on one byte, not waiting. */
static int l_fd_range_lock(lua_State *L)
{
    mr_fd *h = check_open(L);
    off_t offset = check_offset(L, 2);
#ifdef F_OFD_SETLK
    int e = ofd_set(h, F_WRLCK, offset);
    if (e == EAGAIN || e == EACCES) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (e != 0)
        return push_errno_fd(L, "fcntl(F_OFD_SETLK)", e);
    lua_pushboolean(L, 1);
    return 1;
#else
    (void)h;
    (void)offset;
    return push_errno_fd(L, "fcntl(F_OFD_SETLK)", ENOSYS);
#endif
}

/* fd:range_unlock(offset) → true | nil, err */
static int l_fd_range_unlock(lua_State *L)
{
    mr_fd *h = check_open(L);
    off_t offset = check_offset(L, 2);
#ifdef F_OFD_SETLK
    int e = ofd_set(h, F_UNLCK, offset);
    if (e != 0)
        return push_errno_fd(L, "fcntl(F_OFD_SETLK)", e);
    lua_pushboolean(L, 1);
    return 1;
#else
    (void)h;
    (void)offset;
    return push_errno_fd(L, "fcntl(F_OFD_SETLK)", ENOSYS);
#endif
}

/* key_slot(key) → a whole number below 2^52: the byte of the claims file whose
   lock claims key. FNV-1a, 64 bits, top 52 kept: two keys share a byte with a
   chance of about n² / 2^53 among n keys held at once. */
static int l_key_slot(lua_State *L)
{
    size_t len, i;
    const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &len);
    uint64_t hash = UINT64_C(14695981039346656037);
    for (i = 0; i < len; i++) {
        hash ^= s[i];
        hash *= UINT64_C(1099511628211);
    }
    mr_push_integer(L, (long long)(hash >> 12));
    return 1;
}

void mr_fd_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"close", l_fd_close},
        {"identity", l_fd_identity},
        {"lock", l_fd_lock},
        {"unlock", l_fd_unlock},
        {"append", l_fd_append},
        {"read", l_fd_read},
        {"read_line", l_fd_read_line},
        {"range_lock", l_fd_range_lock},
        {"range_unlock", l_fd_range_unlock},
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"open_fd", l_open_fd},
        {"file_identity", l_file_identity},
        {"key_slot", l_key_slot},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, MR_FD_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_fd_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_fd_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, MR_FD_MT);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, funcs, 0);
}
