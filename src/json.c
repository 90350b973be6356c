/* JSON bridge: a private lua-cjson instance, so the host's settings never change. */
#include "compat.h"
#include "core.h"
#include "json_encode.h"

#define MR_JSON_MAX_DEPTH 128

/* json_decode(text) → value | nil, message. Upvalue 1: the instance's decode. */
static int l_json_decode(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TSTRING);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != 0) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    return 1;
}

static void call_setting(lua_State *L, int instance, const char *name, int arg_is_bool, int value)
{
    lua_getfield(L, instance, name);
    if (arg_is_bool)
        lua_pushboolean(L, value);
    else
        lua_pushinteger(L, value);
    lua_call(L, 1, 0);
}

void mr_json_register(lua_State *L)
{
    int instance;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "new");
    if (!lua_isfunction(L, -1))
        luaL_error(L, "lua-cjson without cjson.new(): version 2.0 or later is required");
    lua_call(L, 0, 1);
    instance = lua_gettop(L);
    /* A depth cap keeps hostile nesting from exhausting the C stack. */
    call_setting(L, instance, "decode_max_depth", 0, MR_JSON_MAX_DEPTH);
    /* Strict JSON: no NaN, Infinity or hex numbers. */
    call_setting(L, instance, "decode_invalid_numbers", 1, 0);
    lua_getfield(L, instance, "decode");
    lua_pushcclosure(L, l_json_decode, 1);
    lua_setfield(L, -4, "json_decode");
    /* cjson.null, to recognise JSON null in decoded values. */
    lua_getfield(L, instance, "null");
    lua_setfield(L, -4, "json_null");
    lua_pop(L, 2);
    mr_json_encode_register(L);
}
