/* The few OS primitives Lua 5.4 lacks here (Debian has no luaposix for it). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "core.h"

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
    if (!(s > 0))
        return 0;
    if (s > 1e9)
        s = 1e9; /* (time_t)math.huge would be undefined; 1e9 s is 31 years */
    req.tv_sec = (time_t)s;
    req.tv_nsec = (long)((s - (double)req.tv_sec) * 1e9);
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
    return 0;
}

/* append_durable(path, data) → true | nil, err. Written and fsync'd before it returns. */
static int l_append_durable(lua_State *L)
{
    size_t len, done = 0;
    const char *path = luaL_checkstring(L, 1);
    const char *data = luaL_checklstring(L, 2, &len);
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
    if (fsync(fd) != 0) {
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

/* exec{path, arg1, …}: replaces the process; returns nil, err only on failure. */
static int l_exec(lua_State *L)
{
    int n, i;
    char **argv;
    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int)lua_rawlen(L, 1);
    luaL_argcheck(L, n >= 1, 1, "argv must hold at least the program");
    argv = lua_newuserdata(L, sizeof(char *) * (size_t)(n + 1));
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, 1, "argv entries must be strings");
        argv[i] = (char *)lua_tostring(L, -1);
        lua_pop(L, 1); /* the argv table keeps the string */
    }
    argv[n] = NULL;
    fflush(NULL);
    execvp(argv[0], argv);
    return push_errno(L, argv[0]);
}

void mr_os_register(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"monotime", l_monotime},
        {"sleep", l_sleep},
        {"append_durable", l_append_durable},
        {"exec", l_exec},
        {NULL, NULL},
    };
    luaL_setfuncs(L, funcs, 0);
}
