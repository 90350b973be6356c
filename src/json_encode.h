/* The JSON writer's registration (json_encode.c), called by the JSON bridge. */
#ifndef MR_JSON_ENCODE_H
#define MR_JSON_ENCODE_H

#include <lua.h>

/* Adds json_encode to the module table on the stack top. */
void mr_json_encode_register(lua_State *L);

#endif
