/* Registration hooks of the core's parts, called from the module entry. */
#ifndef MR_CORE_H
#define MR_CORE_H

#include <lua.h>

/* Each adds its functions to the module table on the stack top. */
void mr_sign_register(lua_State *L);
void mr_session_register(lua_State *L);
void mr_json_register(lua_State *L); /* raises if lua-cjson is missing */
void mr_os_register(lua_State *L);
void mr_fd_register(lua_State *L); /* called by mr_os_register */
void mr_normalize_register(lua_State *L);
void mr_signals_register(lua_State *L);

#endif
