/* Key-pair HMAC signing for the API gateway, and its Lua bindings. */
#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
   "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. */
static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int mr_valid_header_name(const char *s, size_t len)
{
    size_t i;
    if (len == 0 || len > 256)
        return 0;
    for (i = 0; i < len; i++)
        if (!is_tchar((unsigned char)s[i]))
            return 0;
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
#define MR_SIGNER_MT "maintenance_report.signer"
#define MR_SCRATCH_MT "maintenance_report.sign_scratch"

/* What a signature needs besides the date; strings of exactly the given lengths. */
typedef struct {
    const char *id, *key, *source, *algorithm, *headers;
    size_t id_len, key_len, source_len, headers_len;
} sign_params;

/* The signed header list, split: names lower-cased, each with its value. */
typedef struct {
    size_t n;
    char lower[MR_MAX_SIGNED][64];
    size_t name_lens[MR_MAX_SIGNED];
    const char *names[MR_MAX_SIGNED], *values[MR_MAX_SIGNED];
    size_t value_lens[MR_MAX_SIGNED];
} signed_list;

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
static int find_extra(lua_State *L, int extra, const char *lower, size_t len)
{
    if (extra == 0)
        return 0;
    lua_pushnil(L);
    while (lua_next(L, extra) != 0) {
        size_t klen;
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tolstring(L, -2, &klen);
            if (klen == len && strncasecmp(k, lower, len) == 0)
                return 1;
        }
        lua_pop(L, 1);
    }
    return 0;
}

static const char *check_id(const char *id, size_t id_len)
{
    size_t i;
    if (id_len == 0)
        return "secret_id is empty";
    for (i = 0; i < id_len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x21 || c == 0x7f || c == '"' || c == '\\')
            return "secret_id contains a quote, a backslash, a space or a control character";
    }
    return NULL;
}

/* Every check that does not depend on the date; NULL when p can sign. */
static const char *check_params(const sign_params *p)
{
    if (mr_hmac_digest(p->algorithm) == NULL)
        return "unsupported algorithm (use hmac-sha1, hmac-sha256, hmac-sha384 or hmac-sha512)";
    if (p->key_len == 0)
        return "secret_key is empty";
    if (!mr_valid_header_value(p->source, p->source_len) || p->source_len == 0)
        return "source must be non-empty and contain no CR, LF or control character";
    return check_id(p->id, p->id_len);
}

/*
 * Splits p->headers and gives each name its value: the date, the source, or
 * extra[name] (extra: a stack index, 0 for none; its strings stay on the table).
 */
static const char *split_list(lua_State *L, const sign_params *p, const char *date, int extra,
                              signed_list *out)
{
    const char *h = p->headers;
    int has_date = 0;
    size_t i;
    out->n = 0;
    for (;;) {
        size_t len, n = out->n;
        while (*h == ' ')
            h++;
        if (*h == '\0')
            break;
        len = strcspn(h, " ");
        if (n == MR_MAX_SIGNED)
            return "too many signed headers";
        if (!mr_valid_header_name(h, len) || len >= sizeof out->lower[0])
            return "signed header name is not a valid token";
        for (i = 0; i < len; i++)
            out->lower[n][i] = ascii_lower(h[i]);
        out->lower[n][len] = '\0';
        out->names[n] = out->lower[n];
        out->name_lens[n] = len;
        if (strcmp(out->lower[n], "x-date") == 0 || strcmp(out->lower[n], "date") == 0) {
            out->values[n] = date;
            out->value_lens[n] = MR_HTTP_DATE_LEN;
            has_date = 1;
        } else if (strcmp(out->lower[n], "x-source") == 0 || strcmp(out->lower[n], "source") == 0) {
            out->values[n] = p->source;
            out->value_lens[n] = p->source_len;
        } else if (find_extra(L, extra, out->lower[n], len)) {
            out->values[n] = lua_tolstring(L, -1, &out->value_lens[n]);
            lua_pop(L, 2); /* the extra table keeps the string alive */
        } else {
            return extra ? "a signed header has no value (give it in 'extra')"
                         : "a signed header has no value (a signer signs only date, x-date, source and x-source)";
        }
        out->n++;
        h += len;
    }
    return has_date ? NULL : "the signed headers must include x-date or date";
}

/* Scratch buffers owned by a userdata: a memory error raised by a Lua call
   between their allocation and their release leaves them to __gc, not leaked. */
enum { SCRATCH_STS, SCRATCH_MAC64, SCRATCH_LIST, SCRATCH_AUTH, SCRATCH_N };

static void scratch_free(mr_buf *b)
{
    int i;
    for (i = 0; i < SCRATCH_N; i++)
        mr_buf_free(&b[i]);
}

static int l_scratch_gc(lua_State *L)
{
    scratch_free(lua_touserdata(L, 1));
    return 0;
}

static mr_buf *new_scratch(lua_State *L)
{
    mr_buf *b = lua_newuserdata(L, sizeof(mr_buf) * SCRATCH_N);
    int i;
    for (i = 0; i < SCRATCH_N; i++)
        mr_buf_init(&b[i], 1 << 20);
    if (luaL_newmetatable(L, MR_SCRATCH_MT)) {
        lua_pushcfunction(L, l_scratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

/*
 * The signing itself, for core.sign and signer:sign. Pushes the headers table
 * and the string to sign (returns 2), or nil and a message (returns 2).
 */
static int push_signature(lua_State *L, const sign_params *p, time_t when, int extra)
{
    char date[MR_HTTP_DATE_LEN + 1];
    unsigned char mac[MR_HMAC_MAX];
    unsigned mac_len = 0;
    signed_list list;
    const char *err;
    mr_buf *b;
    size_t i;
    int out;

    if ((err = check_params(p)) == NULL && mr_http_date(when, date) != 0)
        err = "date is out of range";
    if (err == NULL)
        err = split_list(L, p, date, extra, &list);
    if (err != NULL) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    b = new_scratch(L);
    err = mr_signing_string(&b[SCRATCH_STS], list.n, list.names, list.name_lens, list.values,
                            list.value_lens);
    if (err == NULL && mr_hmac(mr_hmac_digest(p->algorithm), p->key, p->key_len,
                               b[SCRATCH_STS].data, b[SCRATCH_STS].len, mac, &mac_len) != 0)
        err = "HMAC computation failed";
    if (err == NULL && mr_base64(&b[SCRATCH_MAC64], mac, mac_len) != 0)
        err = "out of memory";
    OPENSSL_cleanse(mac, sizeof mac);
    /* headers= echoes the list as given, normalised to single spaces. */
    for (i = 0; err == NULL && i < list.n; i++)
        if ((i > 0 && mr_buf_append(&b[SCRATCH_LIST], " ", 1) != 0) ||
            mr_buf_append(&b[SCRATCH_LIST], list.lower[i], list.name_lens[i]) != 0)
            err = "out of memory";
    if (err == NULL)
        err = mr_authorization(&b[SCRATCH_AUTH], p->id, p->id_len, p->algorithm,
                               b[SCRATCH_LIST].data, b[SCRATCH_MAC64].data);
    if (err != NULL) {
        scratch_free(b);
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_createtable(L, 0, 3);
    out = lua_gettop(L);
    for (i = 0; i < list.n; i++) {
        const char *canonical = canonical_name(list.lower[i]);
        if (canonical != NULL) {
            lua_pushlstring(L, list.values[i], list.value_lens[i]);
            lua_setfield(L, out, canonical);
        }
    }
    lua_pushlstring(L, b[SCRATCH_AUTH].data, b[SCRATCH_AUTH].len);
    lua_setfield(L, out, "Authorization");
    lua_pushlstring(L, b[SCRATCH_STS].data, b[SCRATCH_STS].len);
    scratch_free(b); /* its userdata stays below the two results */
    return 2;
}

/* A string option of core.sign/core.signer: raises for a wrong type; a NUL byte
   is a bad value, reported in *err like the other bad values. */
static const char *sign_option(lua_State *L, const char *what, const char *key, const char *def,
                               size_t *len, const char **err)
{
    const char *s = mr_opt_bytes(L, 1, what, key, def, len);
    if (mr_has_nul(s, *len) && *err == NULL)
        *err = lua_pushfstring(L, "option '%s' must not contain a NUL byte", key);
    return s;
}

/* Reads the five string options into p; returns NULL or the first bad value's message. */
static const char *read_params(lua_State *L, const char *what, sign_params *p)
{
    const char *err = NULL;
    size_t alg_len;
    p->id = sign_option(L, what, "secret_id", NULL, &p->id_len, &err);
    p->key = sign_option(L, what, "secret_key", NULL, &p->key_len, &err);
    p->source = sign_option(L, what, "source", "market", &p->source_len, &err);
    p->algorithm = sign_option(L, what, "algorithm", "hmac-sha1", &alg_len, &err);
    p->headers = sign_option(L, what, "headers", "x-date x-source", &p->headers_len, &err);
    if (p->id == NULL || p->key == NULL)
        luaL_error(L, "%s: secret_id and secret_key are required strings", what);
    return err;
}

static time_t opt_date(lua_State *L, int idx, const char *what)
{
    time_t when;
    if (lua_isnoneornil(L, idx))
        return time(NULL);
    if (lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "%s: 'date' must be a number (epoch seconds)", what);
    when = to_time(lua_tonumber(L, idx));
    return when;
}

/*
 * sign{secret_id=, secret_key=, source="market", algorithm="hmac-sha1",
 *      headers="x-date x-source", date=epoch, extra={name=value}}
 * → {Header=value, ...}, string_to_sign, or nil, message for values that cannot be sent.
 */
static int l_sign(lua_State *L)
{
    sign_params p;
    const char *err;
    time_t when;
    int extra = 0;
    luaL_checktype(L, 1, LUA_TTABLE);
    err = read_params(L, "sign", &p);
    lua_getfield(L, 1, "date");
    when = opt_date(L, -1, "sign");
    lua_pop(L, 1);
    lua_getfield(L, 1, "extra");
    if (!lua_isnil(L, -1)) {
        luaL_argcheck(L, lua_istable(L, -1), 1, "option 'extra' must be a table");
        extra = lua_gettop(L);
    } else {
        lua_pop(L, 1);
    }
    if (err != NULL) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    return push_signature(L, &p, when, extra);
}

/* ---- core.signer: the secret key held in C ----------------------------- */

typedef struct {
    sign_params p; /* every string owned: one malloc each, the key cleansed on release */
    int closed;
    /* The last signature: the same second signs to the same headers, and a
       client sends many requests a second. Neither string is secret (both go
       out in, or are rebuilt from, the request). */
    time_t cached_when;
    char *cached_auth, *cached_sts; /* NULL: nothing cached */
    size_t cached_auth_len, cached_sts_len;
} mr_signer;

static void drop_cache(mr_signer *sg)
{
    free(sg->cached_auth);
    free(sg->cached_sts);
    sg->cached_auth = sg->cached_sts = NULL;
}

static void free_string(const char *s, size_t len, int secret)
{
    if (s == NULL)
        return;
    if (secret)
        OPENSSL_cleanse((void *)s, len);
    free((void *)s);
}

static void signer_close(mr_signer *sg)
{
    drop_cache(sg);
    free_string(sg->p.key, sg->p.key_len, 1);
    free_string(sg->p.id, sg->p.id_len, 0);
    free_string(sg->p.source, sg->p.source_len, 0);
    free_string(sg->p.headers, sg->p.headers_len, 0);
    memset(&sg->p, 0, sizeof sg->p);
    sg->closed = 1;
}

static char *dup_bytes(const char *s, size_t len)
{
    char *c = malloc(len + 1);
    if (c != NULL) {
        memcpy(c, s, len);
        c[len] = '\0';
    }
    return c;
}

/* The same name as a static string, for a signer that outlives the options table. */
static const char *static_algorithm(const char *algorithm)
{
    static const char *const names[] = {"hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"};
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(algorithm, names[i]) == 0)
            return names[i];
    return NULL;
}

static mr_signer *check_signer(lua_State *L)
{
    mr_signer *sg = luaL_checkudata(L, 1, MR_SIGNER_MT);
    if (sg->closed)
        luaL_error(L, "signer is closed");
    return sg;
}

/* core.signer{secret_id=, secret_key=, source=, algorithm=, headers=} → signer | nil, message */
static int l_signer_new(lua_State *L)
{
    static const char *const known[] = {"secret_id", "secret_key", "source", "algorithm", "headers", NULL};
    sign_params p;
    mr_signer *sg;
    const char *err;
    int i;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        for (i = 0; k != NULL && known[i] != NULL && strcmp(k, known[i]) != 0; i++)
            ;
        if (k == NULL || known[i] == NULL || strlen(k) != lua_rawlen(L, -2))
            return luaL_error(L, "signer: unknown option '%s'",
                              k ? k : luaL_typename(L, -2));
        lua_pop(L, 1);
    }
    err = read_params(L, "signer", &p);
    if (err == NULL)
        err = check_params(&p);
    if (err == NULL) {
        signed_list list;
        err = split_list(L, &p, "Thu, 01 Jan 1970 00:00:00 GMT", 0, &list);
    }
    if (err != NULL) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    sg = lua_newuserdata(L, sizeof *sg);
    memset(sg, 0, sizeof *sg); /* __gc copes with a half-built signer */
    luaL_getmetatable(L, MR_SIGNER_MT);
    lua_setmetatable(L, -2);
    sg->p.algorithm = static_algorithm(p.algorithm);
    if ((sg->p.key = dup_bytes(p.key, p.key_len)) != NULL)
        sg->p.key_len = p.key_len;
    if ((sg->p.id = dup_bytes(p.id, p.id_len)) != NULL)
        sg->p.id_len = p.id_len;
    if ((sg->p.source = dup_bytes(p.source, p.source_len)) != NULL)
        sg->p.source_len = p.source_len;
    if ((sg->p.headers = dup_bytes(p.headers, p.headers_len)) != NULL)
        sg->p.headers_len = p.headers_len;
    if (!sg->p.key || !sg->p.id || !sg->p.source || !sg->p.headers) {
        signer_close(sg);
        return luaL_error(L, "signer: out of memory");
    }
    {
        /* A process's first HMAC loads OpenSSL's algorithm tables: about 1 ms and 20
           page faults. Paid here, when the client is made, and not in the first
           frame-budgeted step of a host's loop. Empty key and data: no secret is
           involved, and a failure would show again on the first real signature. */
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        (void)mr_hmac(mr_hmac_digest(sg->p.algorithm), "", 0, "", 0, mac, &mac_len);
    }
    return 1;
}

/* signer:sign([date]) → headers, string_to_sign | nil, message */
static int l_signer_sign(lua_State *L)
{
    mr_signer *sg = check_signer(L);
    time_t when = opt_date(L, 2, "signer:sign");
    char date[MR_HTTP_DATE_LEN + 1];
    signed_list list;
    size_t i, len;
    const char *auth, *sts;
    int n;
    if (sg->cached_auth != NULL && sg->cached_when == when && mr_http_date(when, date) == 0 &&
        split_list(L, &sg->p, date, 0, &list) == NULL) {
        /* the headers push_signature would build, with the cached HMAC work */
        lua_createtable(L, 0, 3);
        for (i = 0; i < list.n; i++) {
            const char *canonical = canonical_name(list.lower[i]);
            if (canonical != NULL) {
                lua_pushlstring(L, list.values[i], list.value_lens[i]);
                lua_setfield(L, -2, canonical);
            }
        }
        lua_pushlstring(L, sg->cached_auth, sg->cached_auth_len);
        lua_setfield(L, -2, "Authorization");
        lua_pushlstring(L, sg->cached_sts, sg->cached_sts_len);
        return 2;
    }
    n = push_signature(L, &sg->p, when, 0);
    if (lua_istable(L, -2)) {
        drop_cache(sg);
        lua_getfield(L, -2, "Authorization");
        auth = lua_tolstring(L, -1, &len);
        if (auth != NULL && (sg->cached_auth = dup_bytes(auth, len)) != NULL)
            sg->cached_auth_len = len;
        lua_pop(L, 1);
        sts = lua_tolstring(L, -1, &len);
        if (sts != NULL && (sg->cached_sts = dup_bytes(sts, len)) != NULL)
            sg->cached_sts_len = len;
        if (sg->cached_auth == NULL || sg->cached_sts == NULL)
            drop_cache(sg); /* out of memory: simply no cache */
        sg->cached_when = when;
    }
    return n;
}

/* signer:mac(data) → base64(HMAC(key, data)) with the signer's algorithm: for a
   string to sign that Lua builds (app auth), while the key stays in C. */
static int l_signer_mac(lua_State *L)
{
    mr_signer *sg = check_signer(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    unsigned char mac[MR_HMAC_MAX];
    unsigned mac_len = 0;
    mr_buf *out = new_scratch(L);
    int failed = mr_hmac(mr_hmac_digest(sg->p.algorithm), sg->p.key, sg->p.key_len, data, len, mac,
                         &mac_len) != 0;
    if (!failed)
        failed = mr_base64(&out[0], mac, mac_len) != 0 ? 2 : 0;
    OPENSSL_cleanse(mac, sizeof mac);
    if (failed) {
        scratch_free(out);
        return luaL_error(L, failed == 2 ? "signer:mac: out of memory" : "signer:mac: HMAC computation failed");
    }
    lua_pushlstring(L, out[0].data, out[0].len);
    scratch_free(out);
    return 1;
}

/* signer:scrub(s) → s with every occurrence of the secret key replaced by "[REDACTED]" */
static int l_signer_scrub(lua_State *L)
{
    mr_signer *sg = check_signer(L);
    size_t len, klen = sg->p.key_len;
    const char *s = luaL_checklstring(L, 2, &len), *end = s + len, *from = s, *at = s;
    const char *key = sg->p.key;
    luaL_Buffer b;
    int found = 0;
    while (klen > 0 && (size_t)(end - at) >= klen) {
        const char *hit = memchr(at, key[0], (size_t)(end - at) - klen + 1);
        if (hit == NULL)
            break;
        if (memcmp(hit, key, klen) != 0) {
            at = hit + 1;
            continue;
        }
        if (!found)
            luaL_buffinit(L, &b);
        found = 1;
        luaL_addlstring(&b, from, (size_t)(hit - from));
        luaL_addstring(&b, "[REDACTED]");
        from = at = hit + klen;
    }
    if (!found) {
        lua_settop(L, 2);
        return 1; /* the very same string */
    }
    luaL_addlstring(&b, from, (size_t)(end - from));
    luaL_pushresult(&b);
    return 1;
}

static int l_signer_close(lua_State *L)
{
    signer_close(luaL_checkudata(L, 1, MR_SIGNER_MT));
    return 0;
}

static int l_signer_tostring(lua_State *L)
{
    mr_signer *sg = luaL_checkudata(L, 1, MR_SIGNER_MT);
    if (sg->closed)
        lua_pushliteral(L, "maintenance_report.signer (closed)");
    else
        lua_pushfstring(L, "maintenance_report.signer (%s)", sg->p.algorithm);
    return 1;
}

/* hmac(algorithm, key, data) → raw digest bytes */
static int l_hmac(lua_State *L)
{
    size_t key_len, data_len;
    const char *alg = mr_check_text(L, 1, NULL);
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
    mr_buf *out = new_scratch(L);
    if (mr_base64(&out[0], (const unsigned char *)data, len) != 0)
        return luaL_error(L, "base64: out of memory");
    lua_pushlstring(L, out[0].data ? out[0].data : "", out[0].len);
    scratch_free(out);
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
        {"signer", l_signer_new},
        {"hmac", l_hmac},
        {"base64", l_base64},
        {"http_date", l_http_date},
        {"constant_time_equals", l_constant_time_equals},
        {NULL, NULL},
    };
    static const luaL_Reg methods[] = {
        {"sign", l_signer_sign},
        {"scrub", l_signer_scrub},
        {"mac", l_signer_mac},
        {"close", l_signer_close},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, MR_SIGNER_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_signer_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_signer_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, MR_SIGNER_MT);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    luaL_setfuncs(L, funcs, 0);
}
