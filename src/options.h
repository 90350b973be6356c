/* Reading an options table from C: one rule for every table the core takes. */
#ifndef MR_OPTIONS_H
#define MR_OPTIONS_H

#include <string.h>

#include "compat.h"

/*
 * t[key] as a string of any bytes (a request body), or def when absent;
 * raises "<what> '<key>' must be a string" for another type. The pointer
 * stays valid while t holds the value.
 */
static inline const char *mr_opt_bytes(lua_State *L, int t, const char *what, const char *key,
                                       const char *def, size_t *len)
{
    const char *s;
    lua_getfield(L, t, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        if (len)
            *len = def ? strlen(def) : 0;
        return def;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "%s '%s' must be a string, got %s", what, key, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, len);
    lua_pop(L, 1); /* still referenced by the table */
    return s;
}

/* 1 when s[0..len) holds a NUL byte: C would silently read a shorter string. */
static inline int mr_has_nul(const char *s, size_t len)
{
    return s != NULL && memchr(s, '\0', len) != NULL;
}

/* As mr_opt_bytes, for text: also raises "<what> '<key>' must not contain a NUL byte". */
static inline const char *mr_opt_lstring(lua_State *L, int t, const char *what, const char *key,
                                         const char *def, size_t *len)
{
    size_t n = 0;
    const char *s = mr_opt_bytes(L, t, what, key, def, &n);
    if (mr_has_nul(s, n))
        luaL_error(L, "%s '%s' must not contain a NUL byte", what, key);
    if (len)
        *len = n;
    return s;
}

/* Argument arg as a string without NUL bytes (a path, an algorithm name); raises otherwise. */
static inline const char *mr_check_text(lua_State *L, int arg, size_t *len)
{
    size_t n;
    const char *s = luaL_checklstring(L, arg, &n);
    luaL_argcheck(L, !mr_has_nul(s, n), arg, "must not contain a NUL byte");
    if (len)
        *len = n;
    return s;
}

/* t[key] as a number >= 0, or def when absent; raises for another type, a negative or NaN. */
static inline double mr_opt_number(lua_State *L, int t, const char *what, const char *key, double def)
{
    double v;
    lua_getfield(L, t, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "%s '%s' must be a number, got %s", what, key, luaL_typename(L, -1));
    v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(v >= 0)) /* also rejects NaN */
        luaL_error(L, "%s '%s' must not be negative", what, key);
    return v;
}

#endif
