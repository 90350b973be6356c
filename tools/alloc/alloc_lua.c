/*
 * A Lua 5.4 interpreter for memory-error tests: alloc_lua script.lua [args…]
 *
 * Its lua_Alloc can be armed to fail one allocation (a growth, as Lua allows;
 * with the retry Lua makes after an emergency collection, so that it raises)
 * and it counts the blocks C code holds through malloc/calloc/realloc/free,
 * which this program interposes for the whole process (the core, libcurl,
 * OpenSSL). Lua's own memory goes through __libc_* directly and is not counted.
 * The script gets three globals:
 *   alloc_fail_in(n)  the n-th Lua allocation from now fails, once (nil: never)
 *   alloc_failed()    true once the armed failure has happened (then disarmed)
 *   alloc_live()      C blocks allocated and not yet freed
 * Exit status: 0 when the script ran without error, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static long live_blocks; /* updated atomically: libcurl may resolve on a thread */

void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    if (p != NULL)
        __atomic_add_fetch(&live_blocks, 1, __ATOMIC_RELAXED);
    return p;
}

void *calloc(size_t n, size_t size)
{
    void *p = __libc_calloc(n, size);
    if (p != NULL)
        __atomic_add_fetch(&live_blocks, 1, __ATOMIC_RELAXED);
    return p;
}

void *realloc(void *old, size_t n)
{
    void *p;
    if (old == NULL)
        return malloc(n);
    if (n == 0) {
        free(old);
        return NULL;
    }
    p = __libc_realloc(old, n);
    return p;
}

void free(void *p)
{
    if (p != NULL)
        __atomic_sub_fetch(&live_blocks, 1, __ATOMIC_RELAXED);
    __libc_free(p);
}

typedef struct {
    long countdown; /* 0: disarmed */
    int burst;      /* growths still to fail once it fired */
    int failed;
} fail_state;

static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    fail_state *fs = ud;
    if (nsize == 0) {
        __libc_free(ptr);
        return NULL;
    }
    if (ptr == NULL || nsize > osize) {
        if (fs->countdown > 0 && --fs->countdown == 0) {
            fs->failed = 1;
            fs->burst = 2; /* Lua 5.4 retries a failed allocation once, after an emergency GC */
        }
        if (fs->burst > 0) {
            fs->burst--;
            return NULL;
        }
    }
    return __libc_realloc(ptr, nsize);
}

static fail_state *state_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

static int l_fail_in(lua_State *L)
{
    fail_state *fs = state_of(L);
    fs->countdown = lua_isnoneornil(L, 1) ? 0 : (long)luaL_checkinteger(L, 1);
    fs->failed = 0;
    fs->burst = 0;
    return 0;
}

static int l_failed(lua_State *L)
{
    lua_pushboolean(L, state_of(L)->failed);
    return 1;
}

static int l_live(lua_State *L)
{
    lua_pushinteger(L, __atomic_load_n(&live_blocks, __ATOMIC_RELAXED));
    return 1;
}

static int traceback(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

int main(int argc, char **argv)
{
    static fail_state fs;
    lua_State *L;
    int i, rc;
    if (argc < 2) {
        fprintf(stderr, "usage: %s script.lua [args...]\n", argv[0]);
        return 2;
    }
    L = lua_newstate(lua_alloc, &fs);
    if (L == NULL)
        return 2;
    luaL_openlibs(L);
    lua_register(L, "alloc_fail_in", l_fail_in);
    lua_register(L, "alloc_failed", l_failed);
    lua_register(L, "alloc_live", l_live);
    lua_createtable(L, argc, 0);
    for (i = 0; i < argc - 1; i++) {
        lua_pushstring(L, argv[i + 1]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");
    lua_pushcfunction(L, traceback);
    if (luaL_loadfile(L, argv[1]) != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        return 1;
    }
    for (i = 2; i < argc; i++)
        lua_pushstring(L, argv[i]);
    rc = lua_pcall(L, argc - 2, 0, 1);
    if (rc != LUA_OK)
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_close(L);
    return rc == LUA_OK ? 0 : 1;
}
