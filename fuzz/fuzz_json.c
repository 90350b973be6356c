/*
 * libFuzzer target for the C->Lua JSON bridge (src/json.c): arbitrary bytes
 * to core.json_decode, in one Lua 5.4 state with lua-cjson (Debian's
 * lua-cjson for 5.4; MR_FUZZ_CPATH overrides where it is looked for).
 *
 * Invariants: json_decode never raises for a string; it returns a value, or
 * nil and a message; no decoded table nests deeper than the bridge's cap
 * (128), and deep input fails cleanly instead of exhausting the C stack.
 * The host's own cjson module keeps its settings.
 * The writer (src/json_encode.c) gets every decoded value: it returns a string
 * or raises a Lua error (a number JSON cannot hold, nesting past 64), and
 * after one round trip its text is stable: read back, it is written again
 * byte for byte.
 */
#include <string.h>

#include "compat.h"
#include "core.h"
#include "fuzz_common.h"

#define MAX_DEPTH 128 /* MR_JSON_MAX_DEPTH in src/json.c */
#define DEFAULT_CPATH \
    "/usr/local/lib/lua/5.4/?.so;/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;/usr/lib/lua/5.4/?.so"

static lua_State *L;
static int decode_ref, encode_ref, array_mt_ref, rank_ref, list_keys_ref;
static unsigned long runs;

static int setup(lua_State *S)
{
    const char *cpath = getenv("MR_FUZZ_CPATH");
    lua_getglobal(S, "package");
    lua_pushstring(S, cpath ? cpath : DEFAULT_CPATH);
    lua_setfield(S, -2, "cpath");
    lua_pop(S, 1);
    lua_newtable(S);
    mr_json_register(S);
    lua_getfield(S, -1, "json_decode");
    lua_getfield(S, -2, "json_encode");
    return 2;
}

/* json_encode(value at idx, one line, no skip keys) under pcall: 1 and the text on
   the stack, or 0 and the stack as it was. */
static int encode(lua_State *S, int idx)
{
    idx = lua_absindex(S, idx);
    lua_rawgeti(S, LUA_REGISTRYINDEX, encode_ref);
    lua_pushvalue(S, idx);
    lua_pushnil(S);                                       /* indent */
    lua_rawgeti(S, LUA_REGISTRYINDEX, list_keys_ref);     /* list_keys */
    lua_pushnil(S);                                       /* skip_keys */
    lua_pushnil(S);                                       /* null */
    lua_rawgeti(S, LUA_REGISTRYINDEX, array_mt_ref);      /* array_mt */
    lua_rawgeti(S, LUA_REGISTRYINDEX, rank_ref);          /* rank */
    if (lua_pcall(S, 7, 1, 0) != 0) {
        CHECK(lua_type(S, -1) == LUA_TSTRING);
        lua_pop(S, 1);
        return 0;
    }
    CHECK(lua_type(S, -1) == LUA_TSTRING);
    return 1;
}

/* Deepest table nesting below the value at idx (a table is 1). */
static int depth(lua_State *S, int idx, int level)
{
    int deepest = level;
    if (!lua_istable(S, idx))
        return level - 1;
    CHECK(level <= MAX_DEPTH);
    CHECK(lua_checkstack(S, 3));
    idx = lua_absindex(S, idx);
    lua_pushnil(S);
    while (lua_next(S, idx) != 0) {
        int d = depth(S, -1, level + 1);
        if (d > deepest)
            deepest = d;
        lua_pop(S, 1);
    }
    return deepest;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    L = luaL_newstate();
    CHECK(L != NULL);
    luaL_openlibs(L);
    lua_pushcfunction(L, setup);
    if (lua_pcall(L, 0, 2, 0) != 0) {
        fprintf(stderr, "fuzz_json: cannot load the bridge: %s\n", lua_tostring(L, -1));
        abort();
    }
    encode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    decode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    array_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    list_keys_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    CHECK(luaL_dostring(L, "return { status = 1, records = 2 }") == 0); /* a few ranked keys */
    rank_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    /* The private instance must leave the shared module as it was (depth 1000). */
    CHECK(luaL_dostring(L, "return require('cjson').decode_max_depth()") == 0);
    CHECK(lua_tointeger(L, -1) == 1000);
    lua_pop(L, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, decode_ref);
    lua_pushlstring(L, (const char *)data, size);
    /* The bridge catches decode errors itself: a raise here is a bug. */
    CHECK(lua_pcall(L, 1, 2, 0) == 0);
    if (lua_isnil(L, -2)) {
        CHECK(lua_type(L, -1) == LUA_TSTRING);
    } else {
        CHECK(lua_isnil(L, -1));
        depth(L, -2, 1);
        if (encode(L, -2)) {
            /* The first text can differ from the input's meaning where the input's
               invalid UTF-8 became U+FFFD (two keys may merge, keys may sort apart);
               from then on it is valid, and reading it back and writing it again
               gives the same bytes. */
            int i, text = 0;
            for (i = 0; i < 2; i++) {
                lua_rawgeti(L, LUA_REGISTRYINDEX, decode_ref);
                lua_pushvalue(L, -2);
                CHECK(lua_pcall(L, 1, 2, 0) == 0);
                CHECK(!lua_isnil(L, -2));
                CHECK(encode(L, -2));
                if (i == 1)
                    CHECK(lua_rawequal(L, -1, text));
                text = lua_gettop(L);
            }
        }
    }
    lua_settop(L, top);
    if (++runs % 4096 == 0)
        lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
