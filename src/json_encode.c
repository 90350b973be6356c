/* json_encode: the library's JSON writer (maintenance_report.json.encode) in C.
   Byte for byte what the Lua rules say (lua/maintenance_report/json.lua):
   keys ranked, then byte order; invalid UTF-8 as U+FFFD; control characters,
   '"', '\\' and DEL escaped ('/' not); integers without ".0", other numbers
   in the shortest of %.14g..%.17g that reads back; NaN and infinities refused.
   The output grows in a userdata-owned buffer, so a Lua error raised halfway
   (a NaN, a function, a cycle) leaks nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compat.h"
#include "json_encode.h"

#define MR_JSON_BUF_MT "maintenance_report.json_buf"
#define MR_JSON_MAX_NESTING 64

/* Argument slots of json_encode. */
enum { A_VALUE = 1, A_INDENT, A_LIST_KEYS, A_SKIP_KEYS, A_NULL, A_ARRAY_MT, A_RANK, A_BUF };

typedef struct {
    lua_State *L;
    mr_buf *out;
    const char *indent; /* NULL: one line */
    size_t indent_len;
} encoder;

typedef struct {
    const char *s;
    size_t len;
    lua_Integer rank; /* 0: not ranked */
    int slot;         /* index in the anchoring table */
} key_ref;

static void fail(lua_State *L, const char *message)
{
    lua_pushstring(L, message);
    lua_error(L);
}

static void put(encoder *e, const void *data, size_t n)
{
    if (mr_buf_append(e->out, data, n) != 0)
        fail(e->L, "json.encode: out of memory");
}

static void put_char(encoder *e, char c)
{
    put(e, &c, 1);
}

static void put_pad(encoder *e, int depth)
{
    int i;
    if (e->indent == NULL)
        return;
    put_char(e, '\n');
    for (i = 0; i < depth; i++)
        put(e, e->indent, e->indent_len);
}

/* Length of the valid UTF-8 sequence at s[i] (0: invalid), as json.lua's utf8_len_at. */
static size_t utf8_len_at(const unsigned char *s, size_t i, size_t n)
{
    unsigned char b = s[i];
    size_t len, k;
    unsigned long cp, min;
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2, min = 0x80, cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3, min = 0x800, cp = b & 0x0F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4, min = 0x10000, cp = b & 0x07;
    } else {
        return 0;
    }
    if (i + len > n)
        return 0;
    for (k = 1; k < len; k++) {
        unsigned char c = s[i + k];
        if (c < 0x80 || c > 0xBF)
            return 0;
        cp = cp * 64 + (c - 0x80);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static void put_string(encoder *e, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;
    put_char(e, '"');
    while (i < n) {
        unsigned char c = s[i];
        const char *esc = NULL;
        char u[6];
        size_t len;
        if (c >= 0x80) {
            len = utf8_len_at(s, i, n);
            if (len > 0) {
                i += len;
                continue;
            }
        } else if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F) {
            i++;
            continue;
        }
        /* c needs writing differently: flush the plain run before it */
        put(e, s + run, i - run);
        if (c >= 0x80) {
            put(e, "\xEF\xBF\xBD", 3); /* U+FFFD for one invalid byte */
        } else {
            switch (c) {
            case '"': esc = "\\\""; break;
            case '\\': esc = "\\\\"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            default: break;
            }
            if (esc != NULL) {
                put(e, esc, strlen(esc));
            } else {
                u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0', u[4] = hex[c >> 4], u[5] = hex[c & 15];
                put(e, u, 6);
            }
        }
        i++;
        run = i;
    }
    put(e, s + run, n - run);
    put_char(e, '"');
}

static void put_number(encoder *e, int idx)
{
    lua_State *L = e->L;
    char tmp[64];
    lua_Number n;
    int digits, first;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
        put(e, tmp, strlen(tmp));
        return;
    }
#endif
    n = lua_tonumber(L, idx);
    if (n != n || n == HUGE_VAL || n == -HUGE_VAL) {
        lua_pushvalue(L, idx);
        lua_pushfstring(L, "json.encode: cannot encode %s (JSON has no NaN or infinity)", lua_tostring(L, -1));
        lua_error(L);
    }
    /* Below 2^53 every integral double is exact, so %.0f prints it digit for digit. */
    if (n == floor(n) && n > -9007199254740992.0 && n < 9007199254740992.0) {
        snprintf(tmp, sizeof tmp, "%.0f", (double)n);
        put(e, tmp, strlen(tmp));
        return;
    }
    /* Normal doubles that read back from 14 digits have no shorter form; subnormals may. */
    first = fabs(n) < 2.2250738585072014e-308 ? 1 : 14;
    for (digits = first; digits <= 16; digits++) {
        snprintf(tmp, sizeof tmp, "%.*g", digits, (double)n);
        if (strtod(tmp, NULL) == n) {
            put(e, tmp, strlen(tmp));
            return;
        }
    }
    snprintf(tmp, sizeof tmp, "%.17g", (double)n);
    put(e, tmp, strlen(tmp));
}

static int key_before(const void *pa, const void *pb)
{
    const key_ref *a = pa, *b = pb;
    size_t n;
    int c;
    if (a->rank && b->rank)
        return a->rank < b->rank ? -1 : a->rank > b->rank;
    if (a->rank)
        return -1;
    if (b->rank)
        return 1;
    n = a->len < b->len ? a->len : b->len;
    c = memcmp(a->s, b->s, n);
    if (c != 0)
        return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int is_truthy_field(lua_State *L, int set, int key_idx)
{
    int yes;
    if (lua_isnil(L, set))
        return 0;
    lua_pushvalue(L, key_idx);
    lua_gettable(L, set);
    yes = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return yes;
}

static void encode_value(encoder *e, int idx, int depth, int key_idx);

/* "array" with its length, "object", or "empty" (0 keys), as json.lua's shape(). */
static int shape(lua_State *L, int t, size_t *count)
{
    lua_Number max = 0;
    size_t n = 0;
    if (lua_getmetatable(L, t)) {
        int is_array = lua_rawequal(L, -1, A_ARRAY_MT);
        lua_pop(L, 1);
        if (is_array) {
            *count = lua_rawlen(L, t);
            return 'a';
        }
    }
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_Number k;
        lua_pop(L, 1);
        n++;
        if (lua_type(L, -1) != LUA_TNUMBER || (k = lua_tonumber(L, -1)) < 1 || k != floor(k)) {
            lua_pop(L, 1);
            return 'o';
        }
        if (k > max)
            max = k;
    }
    *count = n;
    if (n == 0)
        return 'e';
    return max == (lua_Number)n ? 'a' : 'o';
}

static void encode_array(encoder *e, int t, size_t n, int depth)
{
    lua_State *L = e->L;
    size_t i;
    if (n == 0) {
        put(e, "[]", 2);
        return;
    }
    put_char(e, '[');
    for (i = 1; i <= n; i++) {
        if (i > 1)
            put_char(e, ',');
        put_pad(e, depth + 1);
        lua_pushinteger(L, (lua_Integer)i);
        lua_gettable(L, t);
        encode_value(e, lua_gettop(L), depth + 1, 0);
        lua_pop(L, 1);
    }
    put_pad(e, depth);
    put_char(e, ']');
}

static void encode_object(encoder *e, int t, int depth)
{
    lua_State *L = e->L;
    int anchor, count = 0, i;
    key_ref *refs;
    lua_newtable(L); /* the key strings, alive while they are sorted and written */
    anchor = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        if (!is_truthy_field(L, A_SKIP_KEYS, lua_gettop(L))) {
            if (lua_type(L, -1) == LUA_TSTRING) {
                lua_pushvalue(L, -1);
            } else {
                /* tostring(k), as the Lua writer does for a number key in an object */
                lua_getglobal(L, "tostring");
                lua_pushvalue(L, -2);
                lua_call(L, 1, 1);
            }
            lua_rawseti(L, anchor, ++count);
        }
    }
    if (count == 0) {
        lua_pop(L, 1);
        put(e, "{}", 2);
        return;
    }
    refs = lua_newuserdata(L, (size_t)count * sizeof *refs);
    for (i = 0; i < count; i++) {
        lua_rawgeti(L, anchor, i + 1);
        refs[i].s = lua_tolstring(L, -1, &refs[i].len);
        refs[i].slot = i + 1;
        lua_rawget(L, A_RANK);
        refs[i].rank = lua_isnumber(L, -1) ? (lua_Integer)lua_tonumber(L, -1) : 0;
        lua_pop(L, 1);
    }
    qsort(refs, (size_t)count, sizeof *refs, key_before);
    put_char(e, '{');
    for (i = 0; i < count; i++) {
        int key_idx;
        if (i > 0)
            put_char(e, ',');
        put_pad(e, depth + 1);
        put_string(e, refs[i].s, refs[i].len);
        if (e->indent != NULL)
            put(e, ": ", 2);
        else
            put_char(e, ':');
        lua_rawgeti(L, anchor, refs[i].slot);
        key_idx = lua_gettop(L);
        lua_pushvalue(L, key_idx);
        lua_gettable(L, t);
        if (lua_isnil(L, -1)) { /* a number key, written as its tostring: t[tonumber(k)] */
            lua_pop(L, 1);
            if (lua_isnumber(L, key_idx)) {
                lua_pushnumber(L, lua_tonumber(L, key_idx));
                lua_gettable(L, t);
            } else {
                lua_pushnil(L);
            }
        }
        encode_value(e, lua_gettop(L), depth + 1, key_idx);
        lua_pop(L, 2);
    }
    put_pad(e, depth);
    put_char(e, '}');
    lua_pop(L, 2); /* refs, anchor */
}

static void encode_table(encoder *e, int t, int depth, int key_idx)
{
    lua_State *L = e->L;
    size_t n = 0;
    int kind;
    if (depth > MR_JSON_MAX_NESTING)
        fail(L, "json.encode: nesting too deep (a cycle?)");
    if (!lua_checkstack(L, 16))
        fail(L, "json.encode: out of Lua stack");
    kind = shape(L, t, &n);
    if (kind == 'e')
        kind = (key_idx != 0 && is_truthy_field(L, A_LIST_KEYS, key_idx)) ? 'a' : 'o';
    if (kind == 'a')
        encode_array(e, t, n, depth);
    else
        encode_object(e, t, depth);
}

static void encode_value(encoder *e, int idx, int depth, int key_idx)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
    case LUA_TLIGHTUSERDATA: /* cjson's null */
    case LUA_TUSERDATA:
        put(e, "null", 4);
        break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        put_string(e, s, n);
        break;
    }
    case LUA_TNUMBER:
        put_number(e, idx);
        break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            put(e, "true", 4);
        else
            put(e, "false", 5);
        break;
    case LUA_TTABLE:
        if (lua_rawequal(L, idx, A_NULL))
            put(e, "null", 4);
        else
            encode_table(e, idx, depth, key_idx);
        break;
    default:
        lua_pushfstring(L, "json.encode: cannot encode a %s", luaL_typename(L, idx));
        lua_error(L);
    }
}

static int l_buf_gc(lua_State *L)
{
    mr_buf_free(luaL_checkudata(L, 1, MR_JSON_BUF_MT));
    return 0;
}

/* json_encode(value, indent|nil, list_keys, skip_keys|nil, null, array_mt, rank) → text. */
static int l_json_encode(lua_State *L)
{
    encoder e;
    mr_buf *out;
    lua_settop(L, A_RANK);
    luaL_checktype(L, A_LIST_KEYS, LUA_TTABLE);
    luaL_checktype(L, A_RANK, LUA_TTABLE);
    out = lua_newuserdata(L, sizeof *out); /* slot A_BUF */
    mr_buf_init(out, 0);
    luaL_getmetatable(L, MR_JSON_BUF_MT);
    lua_setmetatable(L, A_BUF);
    e.L = L;
    e.out = out;
    e.indent = lua_isnil(L, A_INDENT) ? NULL : luaL_checklstring(L, A_INDENT, &e.indent_len);
    encode_value(&e, A_VALUE, 0, 0);
    lua_pushlstring(L, out->data != NULL ? out->data : "", out->len);
    mr_buf_free(out);
    return 1;
}

void mr_json_encode_register(lua_State *L)
{
    if (luaL_newmetatable(L, MR_JSON_BUF_MT)) {
        lua_pushcfunction(L, l_buf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_json_encode);
    lua_setfield(L, -2, "json_encode");
}
