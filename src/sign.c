/* Key-pair HMAC signing for the API gateway, and its Lua bindings. */
#include "sign.h"

#include <strings.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "compat.h"
#include "core.h"
#include "options.h"

const void *mr_hmac_digest(const char *algorithm)
{
    if (strcmp(algorithm, "hmac-sha1") == 0)
        return EVP_sha1();
    if (strcmp(algorithm, "hmac-sha256") == 0)
        return EVP_sha256();
    if (strcmp(algorithm, "hmac-sha384") == 0)
        return EVP_sha384();
    if (strcmp(algorithm, "hmac-sha512") == 0)
        return EVP_sha512();
    return NULL;
}

int mr_hmac(const void *digest, const void *key, size_t keylen,
            const void *data, size_t len, unsigned char *out, unsigned *outlen)
{
    static const unsigned char empty = 0;
    if (keylen > 0x7fffffff)
        return -1;
    /* OpenSSL treats a NULL key as "reuse the previous one"; pass a real pointer. */
    if (HMAC((const EVP_MD *)digest, keylen ? key : &empty, (int)keylen,
             len ? data : &empty, len, out, outlen) == NULL)
        return -1;
    return 0;
}

int mr_base64(mr_buf *out, const unsigned char *data, size_t len)
{
    size_t encoded = 4 * ((len + 2) / 3);
    int n;
    if (len > 0x3fffffff || mr_buf_reserve(out, encoded) != 0)
        return -1;
    /* EVP_EncodeBlock NUL-terminates; mr_buf_reserve left room for it. */
    n = EVP_EncodeBlock((unsigned char *)out->data + out->len, data, (int)len);
    if (n < 0 || (size_t)n != encoded)
        return -1;
    out->len += encoded;
    return 0;
}

int mr_http_date(time_t t, char out[MR_HTTP_DATE_LEN + 1])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    int n;
    /* tm_year + 1900 would overflow an int for tm_year near INT_MAX. */
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year > 9999 - 1900 || tm.tm_year < -1900)
        return -1;
    /* Names come from our tables, never strftime, so the locale cannot change them. */
    n = snprintf(out, MR_HTTP_DATE_LEN + 1, "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
    return n == MR_HTTP_DATE_LEN ? 0 : -1;
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

int mr_valid_header_name(const char *s, size_t len)
{
    size_t i;
    if (len == 0 || len > 256)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int mr_valid_header_value(const char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

const char *mr_signing_string(mr_buf *out, size_t n, const char *const *names,
                              const size_t *name_lens, const char *const *values,
                              const size_t *value_lens)
{
    size_t i, j;
    for (i = 0; i < n; i++) {
        if (!mr_valid_header_name(names[i], name_lens[i]))
            return "signed header name is not a valid token";
        if (!mr_valid_header_value(values[i], value_lens[i]))
            return "signed header value contains CR, LF or another control character";
        if (i > 0 && mr_buf_append(out, "\n", 1) != 0)
            return "out of memory";
        for (j = 0; j < name_lens[i]; j++) {
            char c = ascii_lower(names[i][j]);
            if (mr_buf_append(out, &c, 1) != 0)
                return "out of memory";
        }
        if (mr_buf_append(out, ": ", 2) != 0 ||
            mr_buf_append(out, values[i], value_lens[i]) != 0)
            return "out of memory";
    }
    return NULL;
}

/* 1 when s can sit between double quotes: no quote, backslash or control byte. */
static int quotable(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

const char *mr_authorization(mr_buf *out, const char *id, size_t id_len,
                             const char *algorithm, const char *headers_field,
                             const char *signature)
{
    size_t i;
    if (!quotable(algorithm) || !quotable(headers_field) || !quotable(signature))
        return "algorithm, headers or signature contains a quote, a backslash or a control character";
    if (id_len == 0)
        return "secret_id is empty";
    for (i = 0; i < id_len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x21 || c == 0x7f || c == '"' || c == '\\')
            return "secret_id contains a quote, a backslash, a space or a control character";
    }
    if (mr_buf_appends(out, "hmac id=\"") != 0 || mr_buf_append(out, id, id_len) != 0 ||
        mr_buf_appends(out, "\", algorithm=\"") != 0 || mr_buf_appends(out, algorithm) != 0 ||
        mr_buf_appends(out, "\", headers=\"") != 0 || mr_buf_appends(out, headers_field) != 0 ||
        mr_buf_appends(out, "\", signature=\"") != 0 || mr_buf_appends(out, signature) != 0 ||
        mr_buf_appends(out, "\"") != 0)
        return "out of memory";
    return NULL;
}

/* ---- Lua bindings ---------------------------------------------------- */

#define MR_MAX_SIGNED 16

/* Converting a NaN or huge double to time_t is undefined: such a date becomes
   one that mr_http_date rejects (before year 0). */
static time_t to_time(lua_Number v)
{
    return (v > -1e15 && v < 1e15) ? (time_t)v : (time_t)-1e15;
}

/* Canonical header names for the values the signer supplies itself. */
static const char *canonical_name(const char *lower)
{
    if (strcmp(lower, "x-date") == 0) return "X-Date";
    if (strcmp(lower, "date") == 0) return "Date";
    if (strcmp(lower, "x-source") == 0) return "X-Source";
    if (strcmp(lower, "source") == 0) return "Source";
    return NULL;
}

/* Looks up extra[name] case-insensitively; leaves the key and value on the stack. */
static int find_extra(lua_State *L, int extra, const char *lower)
{
    if (extra == 0)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, extra) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING &&
            strcasecmp(lua_tostring(L, -2), lower) == 0)
            return 1;
        lua_pop(L, 1);
    }
    return 0;
}

static int sign_fail(lua_State *L, mr_buf *a, mr_buf *b, const char *msg)
{
    mr_buf_free(a);
    mr_buf_free(b);
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/*
 * sign{secret_id=, secret_key=, source="market", algorithm="hmac-sha1",
 *      headers="x-date x-source", date=epoch, extra={name=value}}
 * → {Header=value, ...} or nil, message for values that cannot be sent.
 */
static int l_sign(lua_State *L)
{
    size_t id_len, key_len, source_len, headers_len;
    const char *id, *key, *source, *algorithm, *headers;
    const char *names[MR_MAX_SIGNED], *values[MR_MAX_SIGNED];
    size_t name_lens[MR_MAX_SIGNED], value_lens[MR_MAX_SIGNED];
    char lower[MR_MAX_SIGNED][64];
    char date[MR_HTTP_DATE_LEN + 1];
    unsigned char mac[MR_HMAC_MAX];
    unsigned mac_len = 0;
    const void *digest;
    const char *err, *p;
    time_t when;
    size_t n = 0, i;
    int extra = 0, has_date = 0, out;
    mr_buf sts, text;

    luaL_checktype(L, 1, LUA_TTABLE);
    id = mr_opt_lstring(L, 1, "sign: option", "secret_id", NULL, &id_len);
    key = mr_opt_lstring(L, 1, "sign: option", "secret_key", NULL, &key_len);
    source = mr_opt_lstring(L, 1, "sign: option", "source", "market", &source_len);
    algorithm = mr_opt_lstring(L, 1, "sign: option", "algorithm", "hmac-sha1", NULL);
    headers = mr_opt_lstring(L, 1, "sign: option", "headers", "x-date x-source", &headers_len);
    if (id == NULL || key == NULL)
        return luaL_error(L, "sign: secret_id and secret_key are required strings");
    lua_getfield(L, 1, "date");
    if (lua_isnil(L, -1)) {
        when = time(NULL);
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
        when = to_time(lua_tonumber(L, -1));
    } else {
        return luaL_error(L, "sign: option 'date' must be a number (epoch seconds)");
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "extra");
    if (!lua_isnil(L, -1)) {
        luaL_argcheck(L, lua_istable(L, -1), 1, "option 'extra' must be a table");
        extra = lua_gettop(L);
    } else {
        lua_pop(L, 1);
    }

    digest = mr_hmac_digest(algorithm);
    mr_buf_init(&sts, 1 << 20);
    mr_buf_init(&text, 1 << 20);
    if (digest == NULL)
        return sign_fail(L, &sts, &text, "unsupported algorithm (use hmac-sha1, hmac-sha256, hmac-sha384 or hmac-sha512)");
    if (mr_http_date(when, date) != 0)
        return sign_fail(L, &sts, &text, "date is out of range");
    if (!mr_valid_header_value(source, source_len) || source_len == 0)
        return sign_fail(L, &sts, &text, "source must be non-empty and contain no CR, LF or control character");

    /* Split the space-separated header list; each name gets a value. */
    lua_newtable(L);
    out = lua_gettop(L);
    for (p = headers; *p;) {
        size_t len;
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        len = strcspn(p, " ");
        if (n == MR_MAX_SIGNED)
            return sign_fail(L, &sts, &text, "too many signed headers");
        if (!mr_valid_header_name(p, len) || len >= sizeof lower[0])
            return sign_fail(L, &sts, &text, "signed header name is not a valid token");
        for (i = 0; i < len; i++)
            lower[n][i] = ascii_lower(p[i]);
        lower[n][len] = '\0';
        names[n] = lower[n];
        name_lens[n] = len;
        if (strcmp(lower[n], "x-date") == 0 || strcmp(lower[n], "date") == 0) {
            values[n] = date;
            value_lens[n] = MR_HTTP_DATE_LEN;
            has_date = 1;
        } else if (strcmp(lower[n], "x-source") == 0 || strcmp(lower[n], "source") == 0) {
            values[n] = source;
            value_lens[n] = source_len;
        } else if (find_extra(L, extra, lower[n])) {
            values[n] = lua_tolstring(L, -1, &value_lens[n]);
            lua_pop(L, 2); /* the extra table keeps the string alive */
        } else {
            return sign_fail(L, &sts, &text, "a signed header has no value (give it in 'extra')");
        }
        if (canonical_name(lower[n]) != NULL) {
            lua_pushlstring(L, values[n], value_lens[n]);
            lua_setfield(L, out, canonical_name(lower[n]));
        }
        n++;
        p += len;
    }
    if (!has_date)
        return sign_fail(L, &sts, &text, "the signed headers must include x-date or date");

    err = mr_signing_string(&sts, n, names, name_lens, values, value_lens);
    if (err != NULL)
        return sign_fail(L, &sts, &text, err);
    if (mr_hmac(digest, key, key_len, sts.data, sts.len, mac, &mac_len) != 0)
        return sign_fail(L, &sts, &text, "HMAC computation failed");
    mr_buf_reset(&sts); /* reuse for the signature text */
    if (mr_base64(&sts, mac, mac_len) != 0)
        return sign_fail(L, &sts, &text, "out of memory");
    OPENSSL_cleanse(mac, sizeof mac);
    {
        /* headers= echoes the list as given, normalised to single spaces. */
        mr_buf list;
        mr_buf_init(&list, 0);
        for (i = 0; i < n; i++) {
            if ((i > 0 && mr_buf_append(&list, " ", 1) != 0) ||
                mr_buf_append(&list, lower[i], name_lens[i]) != 0) {
                mr_buf_free(&list);
                return sign_fail(L, &sts, &text, "out of memory");
            }
        }
        err = mr_authorization(&text, id, id_len, algorithm, list.data, sts.data);
        mr_buf_free(&list);
    }
    if (err != NULL)
        return sign_fail(L, &sts, &text, err);
    lua_pushlstring(L, text.data, text.len);
    lua_setfield(L, out, "Authorization");
    mr_buf_free(&sts);
    mr_buf_free(&text);
    lua_pushvalue(L, out);
    return 1;
}

/* hmac(algorithm, key, data) → raw digest bytes */
static int l_hmac(lua_State *L)
{
    size_t key_len, data_len;
    const char *alg = luaL_checkstring(L, 1);
    const char *key = luaL_checklstring(L, 2, &key_len);
    const char *data = luaL_checklstring(L, 3, &data_len);
    const void *digest = mr_hmac_digest(alg);
    unsigned char mac[MR_HMAC_MAX];
    unsigned mac_len = 0;
    if (digest == NULL)
        return luaL_argerror(L, 1, "unsupported algorithm");
    if (mr_hmac(digest, key, key_len, data, data_len, mac, &mac_len) != 0)
        return luaL_error(L, "HMAC computation failed");
    lua_pushlstring(L, (const char *)mac, mac_len);
    OPENSSL_cleanse(mac, sizeof mac);
    return 1;
}

static int l_base64(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    mr_buf out;
    mr_buf_init(&out, 0);
    if (mr_base64(&out, (const unsigned char *)data, len) != 0) {
        mr_buf_free(&out);
        return luaL_error(L, "base64: out of memory");
    }
    lua_pushlstring(L, out.data ? out.data : "", out.len);
    mr_buf_free(&out);
    return 1;
}

static int l_http_date(lua_State *L)
{
    char date[MR_HTTP_DATE_LEN + 1];
    time_t when = lua_isnoneornil(L, 1) ? time(NULL) : to_time(luaL_checknumber(L, 1));
    if (mr_http_date(when, date) != 0)
        return luaL_argerror(L, 1, "date out of range");
    lua_pushstring(L, date);
    return 1;
}

/* Compares two secrets without leaking where they differ. */
static int l_constant_time_equals(lua_State *L)
{
    size_t a_len, b_len;
    const char *a = luaL_checklstring(L, 1, &a_len);
    const char *b = luaL_checklstring(L, 2, &b_len);
    lua_pushboolean(L, a_len == b_len && CRYPTO_memcmp(a, b, a_len) == 0);
    return 1;
}

void mr_sign_register(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"sign", l_sign},
        {"hmac", l_hmac},
        {"base64", l_base64},
        {"http_date", l_http_date},
        {"constant_time_equals", l_constant_time_equals},
        {NULL, NULL},
    };
    luaL_setfuncs(L, funcs, 0);
}
