/* SIGINT/SIGTERM turned into an "interrupted!" Lua error (core.catch_signals). */
#ifndef MR_SIGNALS_H
#define MR_SIGNALS_H

#include <lua.h>

/* Whether a caught signal waits to be raised: long waits return early on it. */
int mr_signal_pending(void);
void mr_signals_register(lua_State *L);

#endif
