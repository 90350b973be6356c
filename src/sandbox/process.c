/* maintenance_report_sandbox.process: exec, for the sandbox's foreground mode
   only. Kept out of the client core, which never replaces its process. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#if LUA_VERSION_NUM == 501
#define lua_rawlen(L, i) lua_objlen((L), (i))
#endif

int luaopen_maintenance_report_sandbox_process(lua_State *L);

/* exec{path, arg1, …}: replaces the process; returns nil, err only on failure. */
static int l_exec(lua_State *L)
{
    int n, i, e;
    char **argv;
    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int)lua_rawlen(L, 1);
    luaL_argcheck(L, n >= 1, 1, "argv must hold at least the program");
    argv = lua_newuserdata(L, sizeof(char *) * (size_t)(n + 1));
    for (i = 0; i < n; i++) {
        size_t len;
        lua_rawgeti(L, 1, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, 1, "argv entries must be strings");
        argv[i] = (char *)lua_tolstring(L, -1, &len);
        if (strlen(argv[i]) != len)
            return luaL_argerror(L, 1, "argv entries must not contain a NUL byte");
        lua_pop(L, 1); /* the argv table keeps the string */
    }
    argv[n] = NULL;
    fflush(NULL);
    execvp(argv[0], argv);
    e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", argv[0], strerror(e));
    return 2;
}

int luaopen_maintenance_report_sandbox_process(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, l_exec);
    lua_setfield(L, -2, "exec");
    return 1;
}
