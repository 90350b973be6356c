/* SIGINT and SIGTERM as a Lua error: core.catch_signals().
 *
 * The standalone interpreters turn Ctrl-C into an "interrupted!" error, but
 * only for SIGINT and only once control is back in Lua; SIGTERM (systemd,
 * timeout(1), a CI runner) kills the process outright. A CLI that has just
 * paid for an order must get the chance to print its id either way, so after
 * catch_signals() both signals set a flag and a hook, as lua.c's laction
 * does: the next Lua instruction raises "interrupted!", and the core's own
 * waits (core.sleep, session:perform) return early when the flag is set.
 *
 * A signal belongs to the whole process, so this state is process-wide by
 * nature: one flag, and the one lua_State (the main thread) that asked.
 */
#include "signals.h"

#include <signal.h>
#include <string.h>

#include "compat.h"

static volatile sig_atomic_t caught_signal;
static lua_State *volatile hooked_state;

static void raise_interrupted(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

static void on_signal(int sig)
{
    caught_signal = sig;
    /* lua_sethook is the one Lua call meant to be safe here (see lua.c). */
    if (hooked_state != NULL)
        lua_sethook(hooked_state, raise_interrupted, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

int mr_signal_pending(void)
{
    return caught_signal != 0;
}

/* The main thread's hook: lua.c and luajit.c answer SIGINT by setting one
   there (to raise "interrupted!"), so a change of it during a wait means the
   host was interrupted, even without catch_signals(). */
lua_Hook mr_main_hook(lua_State *L)
{
#if LUA_VERSION_NUM >= 502
    lua_Hook hook;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    hook = lua_gethook(lua_tothread(L, -1));
    lua_pop(L, 1);
    return hook;
#else
    return lua_gethook(L); /* LuaJIT: one hook for all threads */
#endif
}

int mr_interrupted(lua_State *L, lua_Hook before)
{
    return mr_signal_pending() || mr_main_hook(L) != before;
}

/* core.catch_signals() → true; call it from the main thread. */
static int l_catch_signals(lua_State *L)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    hooked_state = L;
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return luaL_error(L, "catch_signals: sigaction failed");
    lua_pushboolean(L, 1);
    return 1;
}

/* core.signal_caught() → the signal number caught since catch_signals, or nil. */
static int l_signal_caught(lua_State *L)
{
    if (caught_signal == 0)
        return 0;
    lua_pushinteger(L, (lua_Integer)caught_signal);
    return 1;
}

void mr_signals_register(lua_State *L)
{
    lua_pushcfunction(L, l_catch_signals);
    lua_setfield(L, -2, "catch_signals");
    lua_pushcfunction(L, l_signal_caught);
    lua_setfield(L, -2, "signal_caught");
}
