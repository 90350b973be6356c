/*
 * libFuzzer target for the C->Lua JSON bridge (src/json.c): arbitrary bytes
 * to core.json_decode, in one Lua 5.4 state with lua-cjson (Debian's
 * lua-cjson for 5.4; MR_FUZZ_CPATH overrides where it is looked for).
 *
 * Invariants: json_decode never raises for a string; it returns a value, or
 * nil and a message; no decoded table nests deeper than the bridge's cap
 * (128), and deep input fails cleanly instead of exhausting the C stack.
 * The host's own cjson module keeps its settings.
 */
#include <string.h>

#include "compat.h"
#include "core.h"
#include "fuzz_common.h"

#define MAX_DEPTH 128 /* MR_JSON_MAX_DEPTH in src/json.c */
#define DEFAULT_CPATH \
    "/usr/local/lib/lua/5.4/?.so;/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;/usr/lib/lua/5.4/?.so"

static lua_State *L;
static int decode_ref;
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
    if (lua_pcall(L, 0, 1, 0) != 0) {
        fprintf(stderr, "fuzz_json: cannot load the bridge: %s\n", lua_tostring(L, -1));
        abort();
    }
    decode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
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
    }
    lua_settop(L, top);
    if (++runs % 4096 == 0)
        lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
