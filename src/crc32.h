/* The CRC-32 function's registration (crc32.c), called by the OS helpers. */
#ifndef MR_CRC32_H
#define MR_CRC32_H

#include <lua.h>

/* Adds crc32 to the module table on the stack top. */
void mr_crc32_register(lua_State *L);

#endif
