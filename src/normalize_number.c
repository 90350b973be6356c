/* normalize.number (docs/normalize.md, "Numbers"): a number, or the decimal
 * text ^[+-]?%d+%.?%d*$ / ^[+-]?%.%d+$ after trimming, as the nearest double;
 * nil for anything else and for results that are not finite. On 5.3+ a whole
 * value within +-2^53 has the integer subtype and anything else is a float,
 * so a value never depends on the interpreter and never wraps. Text goes
 * through lua_stringtonumber (5.3+) or lua_tonumber (LuaJIT), as tonumber
 * would, which keeps the locale out of it. */
#include <math.h>
#include <string.h>

#include "normalize.h"

#define MAX_EXACT 9007199254740992.0 /* 2^53: every whole double up to here is exact */
#define NUMBUF 64                   /* decimal text converted from a stack buffer up to this size */

static lua_Number abs_num(lua_Number f)
{
    return f < 0 ? -f : f;
}

int mr_is_integral(lua_Number f)
{
    if (abs_num(f) >= 4503599627370496.0) /* 2^52: no fraction bits left */
        return 1;
    return (lua_Number)(long long)f == f;
}

/* ^[+-]?%d+%.?%d*$ or ^[+-]?%.%d+$ */
static int is_decimal(const unsigned char *s, size_t n)
{
    size_t i = 0, start;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    start = i;
    while (i < n && mr_is_digit(s[i]))
        i++;
    if (i > start) {
        if (i < n && s[i] == '.')
            for (i++; i < n && mr_is_digit(s[i]); i++)
                ;
        return i == n;
    }
    if (i >= n || s[i] != '.')
        return 0;
    start = ++i;
    while (i < n && mr_is_digit(s[i]))
        i++;
    return i > start && i == n;
}

/* Pushes the normalized f, or returns 0 for NaN and infinities. */
static int push_float(lua_State *L, lua_Number f)
{
    if (!isfinite(f))
        return 0;
#if LUA_VERSION_NUM >= 503
    if (abs_num(f) <= MAX_EXACT && mr_is_integral(f)) {
        lua_pushinteger(L, (lua_Integer)f);
        return 1;
    }
#endif
    lua_pushnumber(L, f);
    return 1;
}

#if LUA_VERSION_NUM >= 503
/* An integer beyond 2^53 becomes the nearest float (what LuaJIT would hold). */
static void push_integer(lua_State *L, lua_Integer i)
{
    const lua_Integer max = (lua_Integer)1 << 53;
    if (i >= -max && i <= max)
        lua_pushinteger(L, i);
    else
        lua_pushnumber(L, (lua_Number)i);
}
#endif

int mr_push_number_text(lua_State *L, const char *text, size_t len, int src)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t b, e, i;
    mr_trim(s, len, &b, &e);
    if (!is_decimal(s + b, e - b))
        return 0;
    if (e - b <= 15) { /* plain digits below 10^15: exact in every interpreter */
        long long v = 0;
        for (i = b; i < e && mr_is_digit(s[i]); i++)
            v = v * 10 + (s[i] - '0');
        if (i == e) {
            mr_push_integer(L, v);
            return 1;
        }
    }
    if (b != 0 || e != len)
        src = 0; /* the trimmed text is converted, not the string */
#if LUA_VERSION_NUM >= 503
    {
        size_t ok;
        lua_Number f;
        if (src != 0) {
            ok = lua_stringtonumber(L, lua_tostring(L, src));
        } else if (e - b < NUMBUF) {
            char buf[NUMBUF];
            memcpy(buf, text + b, e - b);
            buf[e - b] = '\0';
            ok = lua_stringtonumber(L, buf);
        } else {
            lua_pushlstring(L, text + b, e - b);
            ok = lua_stringtonumber(L, lua_tostring(L, -1));
            lua_remove(L, ok ? -2 : -1);
        }
        if (!ok)
            return 0;
        if (lua_isinteger(L, -1)) {
            lua_Integer n = lua_tointeger(L, -1);
            lua_pop(L, 1);
            push_integer(L, n);
            return 1;
        }
        f = lua_tonumber(L, -1);
        lua_pop(L, 1);
        return push_float(L, f);
    }
#else
    {
        lua_Number f;
        if (src != 0) {
            f = lua_tonumber(L, src);
        } else {
            lua_pushlstring(L, text + b, e - b);
            f = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
        return push_float(L, f);
    }
#endif
}

int mr_push_number(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, idx)) {
            push_integer(L, lua_tointeger(L, idx));
            return 1;
        }
#endif
        return push_float(L, lua_tonumber(L, idx));
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        return mr_push_number_text(L, s, len, idx);
    }
    default:
        return 0;
    }
}

/* normalize_number(value) → number | nil */
int mr_l_normalize_number(lua_State *L)
{
    if (!mr_push_number(L, 1))
        lua_pushnil(L);
    return 1;
}
