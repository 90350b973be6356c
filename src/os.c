/* The few OS primitives Lua 5.4 lacks here (Debian has no luaposix for it). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "signals.h"
#include "core.h"
#include "crc32.h"
#include "options.h"

static int push_errno(lua_State *L, const char *what)
{
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, strerror(e));
    return 2;
}

/* monotime() → seconds from an arbitrary start, never going back. */
static int l_monotime(lua_State *L)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return luaL_error(L, "clock_gettime failed");
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* sleep(seconds): for the blocking workflow's poll waits only. */
static int l_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    struct timespec req, rem;
    lua_Hook before = mr_main_hook(L);
    if (!(s > 0))
        return 0;
    if (s > 1e9)
        s = 1e9; /* (time_t)math.huge would be undefined; 1e9 s is 31 years */
    req.tv_sec = (time_t)s;
    req.tv_nsec = (long)((s - (double)req.tv_sec) * 1e9);
    /* A Ctrl-C must not wait for a 30 s sleep to finish: a signal
       core.catch_signals() caught, or one the interpreter's own handler
       answered by setting a hook, ends the wait. Other signals resume it. */
    while (nanosleep(&req, &rem) != 0 && errno == EINTR && !mr_interrupted(L, before))
        req = rem;
    return 0;
}

/* unsetenv(name) → true | nil, err: the CLI drops the secret key from its
   environment once read, so that no child process it starts inherits it. */
static int l_unsetenv(lua_State *L)
{
    const char *name = mr_check_text(L, 1, NULL);
    if (name[0] == '\0' || strchr(name, '=') != NULL)
        return luaL_argerror(L, 1, "not a variable name");
    if (unsetenv(name) != 0)
        return push_errno(L, name);
    lua_pushboolean(L, 1);
    return 1;
}

/* append_durable(path, data [, sync]) → true | nil, err. Written, and fsync'd
   before it returns unless sync is false: a record that must only survive the
   process (page-cache data outlives a SIGKILL), not the machine. */
static int l_append_durable(lua_State *L)
{
    size_t len, done = 0;
    const char *path = mr_check_text(L, 1, NULL);
    const char *data = luaL_checklstring(L, 2, &len);
    int sync = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return push_errno(L, path);
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return push_errno(L, path);
        }
        done += (size_t)n;
    }
    if (sync && fsync(fd) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return push_errno(L, path);
    }
    if (close(fd) != 0)
        return push_errno(L, path);
    lua_pushboolean(L, 1);
    return 1;
}

/* fsync_dir(path) → true | nil, err: makes a rename or create in that directory durable. */
static int l_fsync_dir(lua_State *L)
{
    const char *path = mr_check_text(L, 1, NULL);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return push_errno(L, path);
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return push_errno(L, path);
    }
    close(fd);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_getpid(lua_State *L)
{
    mr_push_integer(L, (long long)getpid());
    return 1;
}

/* ---- core.flock: an exclusive advisory lock the kernel drops with the process ---- */

#define MR_LOCK_MT "maintenance_report.lock"

typedef struct {
    int fd; /* -1 once released */
} mr_lock;

/* Closing the descriptor releases the flock (it is the only one on this open file). */
static int l_lock_release(lua_State *L)
{
    mr_lock *lk = luaL_checkudata(L, 1, MR_LOCK_MT);
    if (lk->fd >= 0) {
        close(lk->fd);
        lk->fd = -1;
    }
    return 0;
}

static int l_lock_tostring(lua_State *L)
{
    mr_lock *lk = luaL_checkudata(L, 1, MR_LOCK_MT);
    lua_pushstring(L, lk->fd >= 0 ? "maintenance_report.lock (held)" : "maintenance_report.lock (released)");
    return 1;
}

/* flock(path) → lock | nil, message, "busy" (another process holds it) | nil, message */
static int l_flock(lua_State *L)
{
    const char *path = mr_check_text(L, 1, NULL);
    mr_lock *lk = lua_newuserdata(L, sizeof *lk); /* before the open: no fd leaks on a memory error */
    lk->fd = -1;
    luaL_getmetatable(L, MR_LOCK_MT);
    lua_setmetatable(L, -2);
    lk->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lk->fd < 0)
        return push_errno(L, path);
    while (flock(lk->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EINTR)
            continue;
        close(lk->fd);
        lk->fd = -1;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(e));
        if (e == EWOULDBLOCK) {
            lua_pushliteral(L, "busy");
            return 3;
        }
        return 2;
    }
    return 1;
}

void mr_os_register(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"monotime", l_monotime},
        {"sleep", l_sleep},
        {"unsetenv", l_unsetenv},
        {"append_durable", l_append_durable},
        {"fsync_dir", l_fsync_dir},
        {"getpid", l_getpid},
        {"flock", l_flock},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, MR_LOCK_MT)) {
        lua_newtable(L);
        lua_pushcfunction(L, l_lock_release);
        lua_setfield(L, -2, "release");
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_lock_release);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_lock_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, MR_LOCK_MT);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, funcs, 0);
    mr_crc32_register(L);
    mr_fd_register(L);
}
