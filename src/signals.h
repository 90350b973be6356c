/* SIGINT/SIGTERM turned into an "interrupted!" Lua error (core.catch_signals). */
#ifndef MR_SIGNALS_H
#define MR_SIGNALS_H

#include <lua.h>

/* Whether a caught signal waits to be raised: long waits return early on it. */
int mr_signal_pending(void);
/* The main thread's hook now, and whether a wait that began when it was
   `before` should end: a caught signal, or the host's own SIGINT handler
   (lua.c, luajit.c) having set a hook since. */
lua_Hook mr_main_hook(lua_State *L);
int mr_interrupted(lua_State *L, lua_Hook before);
void mr_signals_register(lua_State *L);

#endif
