/*
 * libFuzzer target for the response-header path of src/transfer.c:
 * mr_parse_headers on arbitrary bytes, then the way a transfer uses it:
 * on_header gets the block line by line (as libcurl calls it) and
 * set_header fills the Lua headers table.
 *
 * Invariants: every name and value handed to the callback lies inside the
 * input; names are non-empty, values trimmed; neither holds CR or LF; the
 * status is -1 or 100..599; the Lua table has lower-case string keys.
 *
 * transfer.c is included, not linked, to reach its static functions.
 */
#include "../src/transfer.c"

#include "fuzz_common.h"

static lua_State *L;

typedef struct {
    const char *begin, *end;
    size_t calls;
} bounds;

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void check_header(void *ud, const char *name, size_t name_len,
                         const char *value, size_t value_len)
{
    bounds *b = ud;
    size_t i;
    CHECK(name >= b->begin && name_len > 0 && name_len <= (size_t)(b->end - name));
    CHECK(value >= b->begin && value <= b->end && value_len <= (size_t)(b->end - value));
    CHECK(!is_ows(name[0]));
    for (i = 0; i < name_len; i++)
        CHECK(name[i] != '\r' && name[i] != '\n' && name[i] != ':');
    for (i = 0; i < value_len; i++)
        CHECK(value[i] != '\r' && value[i] != '\n');
    CHECK(value_len == 0 || (!is_ows(value[0]) && !is_ows(value[value_len - 1])));
    b->calls++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    L = luaL_newstate();
    CHECK(L != NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size, *last = p;
    bounds b;
    mr_transfer t;
    int status, top;

    /* 1. Raw parse: data is libFuzzer's exact-size heap copy, so ASan sees any overread. */
    b.begin = p;
    b.end = end;
    b.calls = 0;
    status = mr_parse_headers(p, size, check_header, &b);
    CHECK(status == -1 || (status >= 100 && status <= 599));

    /* 2. As in a transfer: one on_header call per line, a status line restarts the block. */
    memset(&t, 0, sizeof t);
    mr_buf_init(&t.head, 64 * 1024);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
            last = p;
        if (on_header((char *)p, 1, n, &t) != n) {
            CHECK(t.head.len + n > 64 * 1024);
            break;
        }
        p += n;
    }
    if (p == end) {
        CHECK(t.head.len == (size_t)(end - last));
        CHECK(t.head.len == 0 || memcmp(t.head.data, last, t.head.len) == 0);
    }

    top = lua_gettop(L);
    lua_newtable(L);
    b.begin = t.head.data ? t.head.data : "";
    b.end = b.begin + t.head.len;
    mr_parse_headers(b.begin, t.head.len, set_header, L);
    CHECK(lua_gettop(L) == top + 1);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        size_t klen, vlen, i;
        const char *k, *v;
        CHECK(lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING);
        k = lua_tolstring(L, -2, &klen);
        v = lua_tolstring(L, -1, &vlen);
        CHECK(klen > 0 && klen < 256);
        for (i = 0; i < klen; i++)
            CHECK(!(k[i] >= 'A' && k[i] <= 'Z') && k[i] != '\r' && k[i] != '\n');
        for (i = 0; i < vlen; i++)
            CHECK(v[i] != '\r' && v[i] != '\n');
        lua_pop(L, 1);
    }
    lua_settop(L, top);
    mr_buf_free(&t.head);
    return 0;
}
