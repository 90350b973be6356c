/* json_encode: the library's JSON writer (maintenance_report.json.encode) in C.
   Byte for byte what the Lua rules say (lua/maintenance_report/json.lua):
   keys ranked, then byte order; invalid UTF-8 as U+FFFD; control characters,
   '"', '\\' and DEL escaped ('/' not); integers without ".0", other numbers
   in the shortest of %.14g..%.17g that reads back; NaN and infinities refused.
   The output and the key scratch grow in one userdata-owned state, so a Lua
   error raised halfway (a NaN, a function, a cycle) leaks nothing. An object's
   keys are anchored on the Lua stack while they are sorted and written: no
   table or userdata per object, so a report of ~170 tables allocates nothing
   but the output buffer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compat.h"
#include "json_encode.h"

#define MR_JSON_BUF_MT "maintenance_report.json_buf"
/* Objects with at most this many keys are sorted by insertion: most have under 15. */
#define MR_JSON_INSERTION_SORT_MAX 16
/* Keys an object anchors on the Lua stack before they move into a table: LuaJIT's
   stack holds about 65,000 slots, and nested objects each take theirs. */
#define MR_JSON_STACK_KEYS 256
#define MR_JSON_MAX_NESTING 64

/* Argument slots of json_encode. */
enum { A_VALUE = 1, A_INDENT, A_LIST_KEYS, A_SKIP_KEYS, A_NULL, A_ARRAY_MT, A_RANK, A_BUF };

typedef struct {
    const char *s;
    size_t len;
    lua_Integer rank; /* 0: not ranked */
    int slot;         /* the Lua stack slot that anchors the key's string */
} key_ref;

/* What one call owns outside Lua, freed by the userdata's __gc on an error. */
typedef struct {
    mr_buf out;
    key_ref *keys; /* the open objects' keys, outermost first */
    size_t keys_cap;
} encode_state;

typedef struct {
    lua_State *L;
    encode_state *st;
    size_t keys_used;   /* keys[0 .. keys_used) belong to the objects being written */
    const char *indent; /* NULL: one line */
    size_t indent_len;
} encoder;

static void fail(lua_State *L, const char *message)
{
    lua_pushstring(L, message);
    lua_error(L);
}

/* The output needs no NUL until the end (lua_pushlstring takes the length), so
   a write with room is one memcpy; mr_buf_reserve keeps one byte spare. */
static void put(encoder *e, const void *data, size_t n)
{
    mr_buf *b = &e->st->out;
    if (b->cap - b->len <= n && mr_buf_reserve(b, n) != 0)
        fail(e->L, "json.encode: out of memory");
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static void put_char(encoder *e, char c)
{
    mr_buf *b = &e->st->out;
    if (b->cap - b->len <= 1 && mr_buf_reserve(b, 1) != 0)
        fail(e->L, "json.encode: out of memory");
    b->data[b->len++] = c;
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

/* 1 for the ASCII bytes written as they are: printable, not '"' or '\\'. */
static const unsigned char plain_ascii[256] = {
    ['\x20'] = 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x22 '"' */
    ['0'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['@'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['P'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x5C '\\' */
    ['`'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['p'] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, /* 0x7F DEL */
};

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
        if (plain_ascii[c]) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            len = utf8_len_at(s, i, n);
            if (len > 0) {
                i += len;
                continue;
            }
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

/* v in decimal, as LUA_INTEGER_FMT and "%.0f" (of an integral double below
   2^53) print it, without a printf call: most numbers in a report are integers. */
static void put_integer(encoder *e, long long v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    /* the magnitude as unsigned, so that LLONG_MIN does not overflow */
    unsigned long long m = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m != 0);
    if (v < 0)
        *--p = '-';
    put(e, p, (size_t)(tmp + sizeof tmp - p));
}

static void put_number(encoder *e, int idx)
{
    lua_State *L = e->L;
    char tmp[64];
    lua_Number n;
    int digits, first;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        put_integer(e, (long long)lua_tointeger(L, idx));
        return;
    }
#endif
    n = lua_tonumber(L, idx);
    if (n != n || n == HUGE_VAL || n == -HUGE_VAL) {
        lua_pushvalue(L, idx);
        lua_pushfstring(L, "json.encode: cannot encode %s (JSON has no NaN or infinity)", lua_tostring(L, -1));
        lua_error(L);
    }
    /* Below 2^53 every integral double is exact and prints digit for digit;
       -0.0 keeps the sign "%.0f" gives it. */
    if (n == floor(n) && n > -9007199254740992.0 && n < 9007199254740992.0) {
        if (n == 0 && signbit(n))
            put(e, "-0", 2);
        else
            put_integer(e, (long long)n);
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

static void sort_keys(key_ref *refs, int count)
{
    int i, j;
    if (count > MR_JSON_INSERTION_SORT_MAX) {
        qsort(refs, (size_t)count, sizeof *refs, key_before);
        return;
    }
    for (i = 1; i < count; i++) {
        key_ref k = refs[i];
        for (j = i; j > 0 && key_before(&refs[j - 1], &k) > 0; j--)
            refs[j] = refs[j - 1];
        refs[j] = k;
    }
}

/* Room for n more keys in the scratch; it may move, so callers index it, never hold it. */
static void reserve_keys(encoder *e, size_t n)
{
    encode_state *st = e->st;
    key_ref *grown;
    size_t cap;
    if (e->keys_used + n <= st->keys_cap)
        return;
    cap = st->keys_cap ? st->keys_cap : 64;
    while (cap < e->keys_used + n)
        cap *= 2;
    grown = realloc(st->keys, cap * sizeof *grown);
    if (grown == NULL)
        fail(e->L, "json.encode: out of memory");
    st->keys = grown;
    st->keys_cap = cap;
}

/* Pushes the key that r names: a stack slot, or an index into the anchor table. */
static void push_key(lua_State *L, int anchor, const key_ref *r)
{
    if (anchor != 0)
        lua_rawgeti(L, anchor, r->slot);
    else
        lua_pushvalue(L, r->slot);
}

static void encode_object(encoder *e, int t, int depth)
{
    lua_State *L = e->L;
    int base = lua_gettop(L), anchor = 0, count = 0, i;
    size_t first;
    /* Each kept key stays on the stack below the one lua_next walks on with, so
       every key string is anchored until the object is written, whatever a
       finalizer run by an allocation does to t. Past MR_JSON_STACK_KEYS they
       move into one anchor table instead, at base + 1. */
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        if (!lua_checkstack(L, 4))
            fail(L, "json.encode: out of Lua stack");
        if (is_truthy_field(L, A_SKIP_KEYS, lua_gettop(L)))
            continue;
        if (lua_type(L, -1) == LUA_TSTRING) {
            lua_pushvalue(L, -1);
        } else {
            /* tostring(k), as the Lua writer does for a number key in an object */
            lua_getglobal(L, "tostring");
            lua_pushvalue(L, -2);
            lua_call(L, 1, 1);
            lua_insert(L, -2);
        }
        count++;
        if (anchor != 0) {
            lua_pushvalue(L, -2);
            lua_rawseti(L, anchor, count);
            lua_remove(L, -2);
        } else if (count == MR_JSON_STACK_KEYS) {
            int j;
            lua_createtable(L, 2 * count, 0);
            for (j = 1; j <= count; j++) {
                lua_pushvalue(L, base + j);
                lua_rawseti(L, -2, j);
            }
            lua_replace(L, base + 1); /* the table over the first key ... */
            for (j = 2; j <= count; j++)
                lua_remove(L, base + 2); /* ... and the others off the stack */
            anchor = base + 1;
        }
    }
    if (count == 0) {
        put(e, "{}", 2);
        return;
    }
    reserve_keys(e, (size_t)count);
    first = e->keys_used;
    for (i = 0; i < count; i++) {
        key_ref *r = &e->st->keys[first + (size_t)i];
        r->slot = anchor != 0 ? i + 1 : base + 1 + i;
        push_key(L, anchor, r);
        r->s = lua_tolstring(L, -1, &r->len); /* anchored where push_key found it */
        lua_rawget(L, A_RANK);
        r->rank = lua_isnumber(L, -1) ? (lua_Integer)lua_tonumber(L, -1) : 0;
        lua_pop(L, 1);
    }
    sort_keys(&e->st->keys[first], count);
    e->keys_used += (size_t)count; /* nested objects take theirs after these */
    put_char(e, '{');
    for (i = 0; i < count; i++) {
        const key_ref *r = &e->st->keys[first + (size_t)i];
        int key_idx;
        if (i > 0)
            put_char(e, ',');
        put_pad(e, depth + 1);
        put_string(e, r->s, r->len);
        if (e->indent != NULL)
            put(e, ": ", 2);
        else
            put_char(e, ':');
        push_key(L, anchor, r);
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
    e->keys_used = first;
    put_pad(e, depth);
    put_char(e, '}');
    lua_settop(L, base);
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

static void free_state(encode_state *st)
{
    mr_buf_free(&st->out);
    free(st->keys);
    st->keys = NULL;
    st->keys_cap = 0;
}

static int l_buf_gc(lua_State *L)
{
    free_state(luaL_checkudata(L, 1, MR_JSON_BUF_MT));
    return 0;
}

/* json_encode(value, indent|nil, list_keys, skip_keys|nil, null, array_mt, rank) → text. */
static int l_json_encode(lua_State *L)
{
    encoder e;
    encode_state *st;
    lua_settop(L, A_RANK);
    luaL_checktype(L, A_LIST_KEYS, LUA_TTABLE);
    luaL_checktype(L, A_RANK, LUA_TTABLE);
    st = lua_newuserdata(L, sizeof *st); /* slot A_BUF */
    mr_buf_init(&st->out, 0);
    st->keys = NULL;
    st->keys_cap = 0;
    luaL_getmetatable(L, MR_JSON_BUF_MT);
    lua_setmetatable(L, A_BUF);
    e.L = L;
    e.st = st;
    e.keys_used = 0;
    e.indent = lua_isnil(L, A_INDENT) ? NULL : luaL_checklstring(L, A_INDENT, &e.indent_len);
    encode_value(&e, A_VALUE, 0, 0);
    lua_pushlstring(L, st->out.data != NULL ? st->out.data : "", st->out.len);
    free_state(st);
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
