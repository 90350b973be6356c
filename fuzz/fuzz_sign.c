/*
 * libFuzzer target for src/sign.c: the signing string, the Authorization
 * builder, the header name/value checks, HMAC, base64, the HTTP date, and
 * core.sign{} through a Lua state.
 *
 * Input: 9 bytes (flags, then a little-endian int64 date), then fields
 * separated by 0xFF: secret_id, secret_key, algorithm, headers, signature,
 * then name, value pairs (at most 16). flags bit 0-1 pick the algorithm
 * (sha1/256/384/512), bit 2 uses the algorithm field instead, bit 3 gives
 * core.sign a NaN or infinite date, bit 4 passes the first value as source.
 *
 * Invariants: a name or value that is not valid is rejected, never built
 * into the output; accepted output holds no CR, LF or NUL but the '\n'
 * between signing-string lines; no Authorization ever holds CR, LF or NUL.
 */
#include <math.h>
#include <string.h>

#include <openssl/evp.h>

#include "compat.h"
#include "core.h"
#include "fuzz_common.h"
#include "sign.h"

#define MAX_FIELDS (5 + 2 * 16)
#define LIMIT (1u << 20) /* as in l_sign */

typedef struct {
    const char *p;
    size_t len;
} field;

static lua_State *L;
static int core_ref;

static const char *const algorithms[4] = {"hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"};

/* Reference rules, written independently of sign.c. */
static int ref_name_ok(const char *s, size_t len)
{
    size_t i;
    if (len == 0 || len > 256)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        /* RFC 9110 tchar */
        if (!(memchr("!#$%&'*+-.^_`|~", c, 15) != NULL || (c >= '0' && c <= '9') ||
              ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')))
            return 0;
    }
    return 1;
}

static int ref_value_ok(const char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0x7f || (c < 0x20 && c != '\t'))
            return 0;
    }
    return 1;
}

static int ref_id_ok(const char *s, size_t len)
{
    size_t i;
    if (len == 0)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

static char *cstr(const field *f) /* a NUL-terminated copy; stops at an inner NUL */
{
    char *s = malloc(f->len + 1);
    CHECK(s != NULL);
    memcpy(s, f->p, f->len);
    s[f->len] = '\0';
    return s;
}

static void check_authorization(const mr_buf *out)
{
    CHECK(out->len >= 9 && memcmp(out->data, "hmac id=\"", 9) == 0);
    CHECK(!has_crlf_nul(out->data, out->len));
    CHECK(out->data[out->len] == '\0');
}

static void check_date(int64_t date)
{
    char buf[MR_HTTP_DATE_LEN + 1];
    if (mr_http_date((time_t)date, buf) == 0) {
        CHECK(strlen(buf) == MR_HTTP_DATE_LEN);
        CHECK(memcmp(buf + MR_HTTP_DATE_LEN - 4, " GMT", 4) == 0);
        CHECK(!has_crlf_nul(buf, MR_HTTP_DATE_LEN));
    }
}

/* core.sign{} as Lua code calls it; every header it returns must be sendable. */
static void check_lua_sign(const field *f, size_t nf, unsigned flags, int64_t date, const char *alg)
{
    int top = lua_gettop(L);
    size_t i;
    luaL_Buffer b;
    lua_rawgeti(L, LUA_REGISTRYINDEX, core_ref);
    lua_getfield(L, -1, "sign");
    lua_createtable(L, 0, 8);
    lua_pushlstring(L, f[0].p, f[0].len);
    lua_setfield(L, -2, "secret_id");
    lua_pushlstring(L, f[1].p, f[1].len);
    lua_setfield(L, -2, "secret_key");
    lua_pushstring(L, alg);
    lua_setfield(L, -2, "algorithm");
    if (flags & 8)
        lua_pushnumber(L, (date & 1) ? (lua_Number)NAN : (date & 2) ? -(lua_Number)INFINITY : (lua_Number)INFINITY);
    else
        lua_pushnumber(L, (lua_Number)date);
    lua_setfield(L, -2, "date");
    if ((flags & 16) && nf > 6) {
        lua_pushlstring(L, f[6].p, f[6].len);
        lua_setfield(L, -2, "source");
    }
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "x-date");
    for (i = 5; i + 1 < nf; i += 2) {
        luaL_addchar(&b, ' ');
        luaL_addlstring(&b, f[i].p, f[i].len);
    }
    luaL_pushresult(&b);
    lua_setfield(L, -2, "headers");
    lua_newtable(L);
    for (i = 5; i + 1 < nf; i += 2) {
        lua_pushlstring(L, f[i].p, f[i].len);
        lua_pushlstring(L, f[i + 1].p, f[i + 1].len);
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "extra");
    if (lua_pcall(L, 1, 2, 0) == 0 && lua_istable(L, -2)) {
        lua_pushnil(L);
        while (lua_next(L, -3) != 0) {
            size_t klen, vlen;
            const char *k, *v;
            CHECK(lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING);
            k = lua_tolstring(L, -2, &klen);
            v = lua_tolstring(L, -1, &vlen);
            CHECK(!has_crlf_nul(k, klen));
            CHECK(!has_crlf_nul(v, vlen));
            lua_pop(L, 1);
        }
        lua_getfield(L, -2, "Authorization");
        CHECK(lua_type(L, -1) == LUA_TSTRING);
    }
    lua_settop(L, top);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    L = luaL_newstate();
    CHECK(L != NULL);
    lua_newtable(L);
    mr_sign_register(L);
    core_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    field f[MAX_FIELDS];
    const char *names[16], *values[16];
    size_t name_lens[16], value_lens[16];
    size_t nf = 0, n = 0, i, start;
    unsigned flags;
    int64_t date = 0;
    int expect_ok = 1;
    const char *err, *alg;
    const void *digest;
    mr_buf sts, sig, auth, list;
    char *raw_alg, *raw_headers, *raw_sig;

    if (size < 9)
        return 0;
    flags = data[0];
    for (i = 0; i < 8; i++)
        date |= (int64_t)((uint64_t)data[1 + i] << (8 * i));
    check_date(date);

    /* Split the rest on 0xFF. */
    for (start = i = 9; i <= size && nf < MAX_FIELDS; i++) {
        if (i == size || data[i] == 0xff) {
            f[nf].p = (const char *)data + start;
            f[nf].len = i - start;
            nf++;
            start = i + 1;
        }
    }
    while (nf < 5) {
        f[nf].p = "";
        f[nf].len = 0;
        nf++;
    }
    for (i = 5; i + 1 < nf && n < 16; i += 2, n++) {
        names[n] = f[i].p;
        name_lens[n] = f[i].len;
        values[n] = f[i + 1].p;
        value_lens[n] = f[i + 1].len;
        if (!ref_name_ok(names[n], name_lens[n]) || !ref_value_ok(values[n], value_lens[n]))
            expect_ok = 0;
    }

    /* The signing string: valid input is built exactly, invalid is refused. */
    mr_buf_init(&sts, LIMIT);
    err = mr_signing_string(&sts, n, names, name_lens, values, value_lens);
    CHECK((err == NULL) == expect_ok);
    if (err == NULL) {
        size_t pos = 0, lf = 0;
        for (i = 0; i < n; i++) {
            size_t j;
            if (i > 0) {
                CHECK(sts.data[pos] == '\n');
                pos++;
            }
            for (j = 0; j < name_lens[i]; j++, pos++) {
                char c = names[i][j];
                CHECK(sts.data[pos] == ((c >= 'A' && c <= 'Z') ? c + 32 : c));
            }
            CHECK(memcmp(sts.data + pos, ": ", 2) == 0);
            pos += 2;
            CHECK(value_lens[i] == 0 || memcmp(sts.data + pos, values[i], value_lens[i]) == 0);
            pos += value_lens[i];
        }
        CHECK(pos == sts.len);
        for (i = 0; i < sts.len; i++) {
            CHECK(sts.data[i] != '\r' && sts.data[i] != '\0');
            lf += sts.data[i] == '\n';
        }
        CHECK(lf == (n ? n - 1 : 0));
    }

    raw_alg = cstr(&f[2]);
    raw_headers = cstr(&f[3]);
    raw_sig = cstr(&f[4]);
    alg = (flags & 4) ? raw_alg : algorithms[flags & 3];

    /* HMAC and base64 of what was signed. */
    mr_buf_init(&sig, 0);
    digest = mr_hmac_digest(alg);
    if (digest != NULL && err == NULL) {
        unsigned char mac[MR_HMAC_MAX];
        unsigned mac_len = 0;
        CHECK(mr_hmac(digest, f[1].p, f[1].len, sts.data, sts.len, mac, &mac_len) == 0);
        CHECK(mac_len == (unsigned)EVP_MD_get_size((const EVP_MD *)digest));
        CHECK(mr_base64(&sig, mac, mac_len) == 0);
        CHECK(sig.len == 4 * ((mac_len + 2) / 3) && strlen(sig.data) == sig.len);
        for (i = 0; i < sig.len; i++) {
            char c = sig.data[i];
            CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || c == '=');
        }
    }

    /* The Authorization as l_sign builds it: accepted names, joined by spaces. */
    if (digest != NULL && err == NULL) {
        mr_buf_init(&list, 0);
        for (i = 0; i < n; i++) {
            size_t j;
            if (i > 0)
                CHECK(mr_buf_append(&list, " ", 1) == 0);
            for (j = 0; j < name_lens[i]; j++) {
                char c = names[i][j];
                c = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
                CHECK(mr_buf_append(&list, &c, 1) == 0);
            }
        }
        mr_buf_init(&auth, LIMIT);
        err = mr_authorization(&auth, f[0].p, f[0].len, alg, list.data ? list.data : "", sig.data);
        CHECK((err == NULL) == ref_id_ok(f[0].p, f[0].len));
        if (err == NULL)
            check_authorization(&auth);
        mr_buf_free(&auth);
        mr_buf_free(&list);
    }

    /* The C API with arbitrary algorithm, headers and signature fields. */
    mr_buf_init(&auth, LIMIT);
    if (mr_authorization(&auth, f[0].p, f[0].len, raw_alg, raw_headers, raw_sig) == NULL)
        check_authorization(&auth);
    mr_buf_free(&auth);

    check_lua_sign(f, nf, flags, date, alg);

    mr_buf_free(&sig);
    mr_buf_free(&sts);
    free(raw_alg);
    free(raw_headers);
    free(raw_sig);
    return 0;
}
