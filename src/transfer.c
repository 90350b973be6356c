/* One HTTP exchange: easy-handle options, response capture, failure facts. */
#include "transfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "compat.h"
#include "options.h"
#include "sign.h"
#include "signals.h"

mr_transfer *mr_transfer_new(void)
{
    mr_transfer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->easy = curl_easy_init();
    if (t->easy == NULL) {
        free(t);
        return NULL;
    }
    mr_buf_init(&t->body, 0);
    mr_buf_init(&t->head, 64 * 1024);
    t->hook_ref = t->refusal_ref = LUA_NOREF;
    return t;
}

void mr_transfer_free(mr_transfer *t)
{
    if (t == NULL)
        return;
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    mr_buf_free(&t->body);
    mr_buf_free(&t->head);
    free(t);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    mr_transfer *t = ud;
    size_t n = size * nmemb;
    if (mr_buf_append(&t->body, data, n) != 0) {
        t->too_large = t->body.limit != 0 && t->body.len + n > t->body.limit;
        return 0; /* aborts the transfer */
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    mr_transfer *t = ud;
    size_t n = size * nmemb;
    /* A new status line starts a new response (after 100 Continue, a proxy CONNECT…). */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        mr_buf_reset(&t->head);
    if (mr_buf_append(&t->head, data, n) != 0)
        return 0;
    return n;
}

/* The last moment before the request is written: the connection (and TLS)
   stands. A paid order's intent is recorded here, so that a crash before it
   leaves nothing recorded for a request that never left, and a crash after
   it leaves "unknown". Nothing may raise through libcurl: the hook runs in a
   protected call, and its refusal goes into a registry slot made at set-up. */
static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    mr_transfer *t = ud;
    lua_State *L = t->L;
    int ok;
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    if (t->hook_ref == LUA_NOREF || L == NULL)
        return CURL_PREREQFUNC_OK;
    if (!lua_checkstack(L, 3)) {
        t->hook_refused = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->hook_ref);
    if (lua_pcall(L, 0, 2, 0) != 0) {
        lua_rawseti(L, LUA_REGISTRYINDEX, t->refusal_ref); /* the error */
        t->hook_refused = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    ok = lua_toboolean(L, -2);
    if (!ok) {
        lua_rawseti(L, LUA_REGISTRYINDEX, t->refusal_ref); /* its second value */
        lua_pop(L, 1);
        t->hook_refused = 1;
        return CURL_PREREQFUNC_ABORT;
    }
    lua_pop(L, 2);
    return CURL_PREREQFUNC_OK;
}

static void drop_hook(lua_State *L, mr_transfer *t)
{
    luaL_unref(L, LUA_REGISTRYINDEX, t->hook_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, t->refusal_ref);
    t->hook_ref = t->refusal_ref = LUA_NOREF;
    t->hook_refused = 0;
}

/* A blocking transfer ends when core.catch_signals() caught a signal; the
   result is an ordinary failure (may have been sent), then Lua raises. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)ud;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return mr_signal_pending();
}

static long to_ms(double seconds)
{
    double ms = seconds * 1000.0 + 0.5;
    if (ms > 2147483647.0)
        return 2147483647L;
    if (seconds > 0 && ms < 1)
        return 1;
    return (long)ms;
}

#define SETOPT(opt, val)                                              \
    do {                                                              \
        CURLcode setopt_rc = curl_easy_setopt(t->easy, opt, val);    \
        if (setopt_rc != CURLE_OK)                                    \
            return refuse(err, "libcurl rejected option " #opt, setopt_rc); \
    } while (0)

static int refuse(mr_setup_error *err, const char *message, CURLcode code)
{
    err->message = message;
    err->code = code;
    return -1;
}

/*
 * What C sends, and refuses (invalid_request) otherwise; another transport
 * must apply the same rules:
 * - header name: 1 to 256 bytes, each an RFC 9110 tchar:
 *   ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~   (so no ':', space, control, NUL or byte >= 0x80);
 * - header value: any bytes but the controls 0x00-0x1F and 0x7F, HTAB allowed
 *   (so no CR, LF or NUL; obs-text bytes >= 0x80 pass); an empty value is sent
 *   as an empty field ("Name:"); at most 64 KiB for "name: value";
 * - method: a header-name token (GET is libcurl's default and is not set);
 * - url: no byte below 0x21 (no space, CR, LF, NUL) and no 0x7F.
 * mr_valid_header_name/value in sign.c implement the name and value rules.
 */
static const char *collect_headers(lua_State *L, int idx, mr_transfer *t)
{
    mr_buf line;
    const char *err = NULL;
    lua_getfield(L, idx, "headers");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "request option 'headers' must be a table, got %s", luaL_typename(L, -1));
    /* Check types first: raising later would leak the line buffer. */
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "request headers must map strings to strings");
        lua_pop(L, 1);
    }
    mr_buf_init(&line, 64 * 1024);
    lua_pushnil(L);
    while (err == NULL && lua_next(L, -2) != 0) {
        size_t nlen, vlen;
        const char *name = lua_tolstring(L, -2, &nlen);
        const char *value = lua_tolstring(L, -1, &vlen);
        struct curl_slist *next;
        mr_buf_reset(&line);
        if (!mr_valid_header_name(name, nlen))
            err = "request header name is not a valid token";
        else if (!mr_valid_header_value(value, vlen))
            err = "request header value contains CR, LF, NUL or another control character";
        /* libcurl drops "Name:" with nothing after it; "Name;" sends an empty field. */
        else if (mr_buf_append(&line, name, nlen) != 0 ||
                 mr_buf_append(&line, vlen ? ": " : ";", vlen ? 2 : 1) != 0 ||
                 mr_buf_append(&line, value, vlen) != 0)
            err = "request header too large";
        else if ((next = curl_slist_append(t->headers, line.data)) == NULL)
            err = "out of memory building the header list";
        else
            t->headers = next;
        lua_pop(L, 1);
    }
    if (err != NULL)
        lua_pop(L, 1); /* the key lua_next left */
    mr_buf_free(&line);
    lua_pop(L, 1);
    return err;
}

static int valid_url(const char *url, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c < 0x21 || c == 0x7f)
            return 0;
    }
    return 1;
}

static int setup_session_options(mr_transfer *t, const mr_http_config *cfg, CURLSH *share,
                                  mr_setup_error *err)
{
    SETOPT(CURLOPT_PRIVATE, (void *)t);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_ERRORBUFFER, t->errbuf);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, (void *)t);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)t);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_NOPROGRESS, 0L);
    SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L); /* a redirect would carry our signature elsewhere */
    if (cfg->user_agent)
        SETOPT(CURLOPT_USERAGENT, cfg->user_agent);
    if (share)
        SETOPT(CURLOPT_SHARE, share);
    if (cfg->insecure) {
        SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (cfg->cafile)
        SETOPT(CURLOPT_CAINFO, cfg->cafile);
    if (cfg->capath)
        SETOPT(CURLOPT_CAPATH, cfg->capath);
    return 0;
}

int mr_transfer_setup(lua_State *L, int idx, mr_transfer *t, const mr_http_config *cfg,
                      CURLSH *share, mr_setup_error *err)
{
    size_t url_len = 0, body_len = 0, method_len = 0;
    const char *url, *method, *body, *herr;
    double timeout, connect_timeout, max_body;
    int fresh_connect;

    luaL_checktype(L, idx, LUA_TTABLE);
    /* Bytes, not text: a NUL in url or method is refused below, a body may hold any byte. */
    url = mr_opt_bytes(L, idx, "request option", "url", NULL, &url_len);
    method = mr_opt_bytes(L, idx, "request option", "method", NULL, &method_len);
    body = mr_opt_bytes(L, idx, "request option", "body", NULL, &body_len);
    timeout = mr_opt_number(L, idx, "request option", "timeout", cfg->timeout);
    connect_timeout = mr_opt_number(L, idx, "request option", "connect_timeout", cfg->connect_timeout);
    max_body = mr_opt_number(L, idx, "request option", "max_body", (double)cfg->max_body);
    lua_getfield(L, idx, "fresh_connect");
    fresh_connect = lua_toboolean(L, -1);
    lua_pop(L, 1);
    drop_hook(L, t);
    t->L = L;
    lua_getfield(L, idx, "before_send");
    if (lua_isfunction(L, -1)) {
        lua_pushboolean(L, 0);
        t->refusal_ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the slot, made now: no allocation later */
        t->hook_ref = luaL_ref(L, LUA_REGISTRYINDEX);    /* pops the function */
    } else {
        if (!lua_isnil(L, -1))
            luaL_error(L, "request option 'before_send' must be a function, got %s", luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    if (url == NULL)
        luaL_error(L, "request option 'url' is required");
    if (!valid_url(url, url_len))
        return refuse(err, "url contains a space, CR, LF, NUL or another control character", CURLE_OK);
    if (method != NULL && !mr_valid_header_name(method, method_len))
        return refuse(err, "method is not a valid token", CURLE_OK);

    /* the handle must not point at the list freed here, even if this request is refused */
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    mr_buf_reset(&t->body);
    mr_buf_reset(&t->head);
    t->body.limit = max_body >= 1 ? mr_size_cap(max_body) : cfg->max_body;
    t->too_large = 0;
    t->result = CURLE_OK;
    t->errbuf[0] = '\0';

    if ((herr = collect_headers(L, idx, t)) != NULL)
        return refuse(err, herr, CURLE_OK);

    if (t->configured_for != cfg || t->configured_share != share) {
        /* Options that are the same for every request of this session: set
           once, after a reset (which keeps the connection, DNS and TLS session
           caches). Until they all stand, the next request starts over. */
        t->configured_for = NULL;
        curl_easy_reset(t->easy);
        if (setup_session_options(t, cfg, share, err) != 0)
            return -1;
        t->configured_for = cfg;
        t->configured_share = share;
    }
    /* Every option a request may set is set (or cleared) on every request,
       so nothing of the previous one carries over. */
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_HTTPHEADER, t->headers);
    SETOPT(CURLOPT_TIMEOUT_MS, to_ms(timeout));
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, to_ms(connect_timeout));
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->body.limit);
    if (t->hook_ref != LUA_NOREF) {
        SETOPT(CURLOPT_PREREQFUNCTION, on_prereq);
        SETOPT(CURLOPT_PREREQDATA, (void *)t);
    } else {
        SETOPT(CURLOPT_PREREQFUNCTION, (curl_prereq_callback)NULL);
    }
    /* On a reused connection that dies unanswered, libcurl silently sends the
       request again: for a paid order that could buy twice. A fresh connection
       is never retried that way. */
    SETOPT(CURLOPT_FRESH_CONNECT, fresh_connect ? 1L : 0L);
    if (body != NULL) {
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        SETOPT(CURLOPT_COPYPOSTFIELDS, body);
    } else {
        SETOPT(CURLOPT_HTTPGET, 1L); /* drops a previous request's body */
    }
    SETOPT(CURLOPT_CUSTOMREQUEST, method != NULL && strcmp(method, "GET") != 0 ? method : (const char *)NULL);
    return 0;
}

/* ---- results ---------------------------------------------------------- */

int mr_parse_headers(const char *data, size_t len, mr_header_cb cb, void *ud)
{
    const char *p = data, *end = data + len;
    int status = -1, first = 1;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *next = eol ? eol + 1 : end;
        if (line_end > p && line_end[-1] == '\r')
            line_end--;
        if (first) {
            /* "HTTP/1.1 200 OK" or "HTTP/2 200" */
            const char *sp = memchr(p, ' ', (size_t)(line_end - p));
            if (sp != NULL && line_end - sp >= 4 && sp[1] >= '1' && sp[1] <= '5' &&
                sp[2] >= '0' && sp[2] <= '9' && sp[3] >= '0' && sp[3] <= '9')
                status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
            first = 0;
        } else if (line_end > p && *p != ' ' && *p != '\t' &&
                   memchr(p, '\r', (size_t)(line_end - p)) == NULL) {
            /* A line with a bare CR is invalid (RFC 9112 2.2): skipped, not passed on. */
            const char *colon = memchr(p, ':', (size_t)(line_end - p));
            if (colon != NULL && colon > p) {
                const char *v = colon + 1, *ve = line_end;
                while (v < ve && (*v == ' ' || *v == '\t'))
                    v++;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                    ve--;
                cb(ud, p, (size_t)(colon - p), v, (size_t)(ve - v));
            }
        }
        p = next;
    }
    return status;
}

/* Lua side of mr_parse_headers: lower-cased names, repeats joined by ", ". */
static void set_header(void *ud, const char *name, size_t name_len,
                       const char *value, size_t value_len)
{
    lua_State *L = ud;
    char lower[256];
    size_t i;
    if (name_len >= sizeof lower)
        return;
    for (i = 0; i < name_len; i++)
        lower[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
    lua_pushlstring(L, lower, name_len);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (lua_isstring(L, -1)) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, value, value_len);
        lua_concat(L, 3);
    } else {
        lua_pop(L, 1);
        lua_pushlstring(L, value, value_len);
    }
    lua_rawset(L, -3);
}

static void push_facts(lua_State *L, CURLcode rc, const char *message, long request_bytes,
                       int connected, int pretransfer, int too_large)
{
    lua_createtable(L, 0, 9);
    mr_push_integer(L, (long long)rc);
    lua_setfield(L, -2, "curl_code");
    lua_pushstring(L, message);
    lua_setfield(L, -2, "message");
    mr_push_integer(L, request_bytes);
    lua_setfield(L, -2, "request_bytes");
    lua_pushboolean(L, connected);
    lua_setfield(L, -2, "connected");
    lua_pushboolean(L, pretransfer);
    lua_setfield(L, -2, "pretransfer");
    lua_pushboolean(L, too_large);
    lua_setfield(L, -2, "too_large");
}

int mr_push_setup_error(lua_State *L, const mr_setup_error *err)
{
    lua_pushnil(L);
    if (err->code != CURLE_OK) {
        push_facts(L, err->code, err->message, 0, 0, 0, 0);
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "invalid_request");
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, err->message);
    lua_setfield(L, -2, "message");
    mr_push_integer(L, 0);
    lua_setfield(L, -2, "request_bytes");
    return 2;
}

/* time= and reused= of a response or a failure. */
static void push_timing(lua_State *L, mr_transfer *t, int connected)
{
    curl_off_t total = 0;
    long connects = 0;
    if (curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &total) == CURLE_OK) {
        lua_pushnumber(L, (lua_Number)total / 1e6);
        lua_setfield(L, -2, "time");
    }
    if (curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK) {
        lua_pushboolean(L, connected && connects == 0);
        lua_setfield(L, -2, "reused");
    }
}

/* Whether a TCP connection stood: libcurl records the local port once the
   socket is connected (also on a reused connection, and before a TLS
   handshake), and the connect time once the whole connect phase is done. */
static int was_connected(mr_transfer *t, long request_bytes)
{
    curl_off_t connect_time = 0;
    long local_port = 0;
    if (request_bytes > 0)
        return 1;
    if (curl_easy_getinfo(t->easy, CURLINFO_LOCAL_PORT, &local_port) == CURLE_OK && local_port > 0)
        return 1;
    return curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &connect_time) == CURLE_OK &&
           connect_time > 0;
}

/* Whether libcurl reached the point where the request starts to go out
   (CURLINFO_PRETRANSFER_TIME_T is set then); when it cannot tell, say yes. */
static int reached_pretransfer(mr_transfer *t)
{
    curl_off_t pretransfer = 0;
    if (curl_easy_getinfo(t->easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer) != CURLE_OK)
        return 1;
    return pretransfer > 0;
}

int mr_transfer_push_result(lua_State *L, mr_transfer *t, CURLcode rc)
{
    long status = 0;
    if (t->hook_refused) {
        /* before_send refused: libcurl wrote nothing of the request */
        lua_pushnil(L);
        lua_createtable(L, 0, 3);
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->refusal_ref);
        lua_setfield(L, -2, "not_sent_because");
        lua_pushliteral(L, "the request was not sent: before_send refused it");
        lua_setfield(L, -2, "message");
        mr_push_integer(L, 0);
        lua_setfield(L, -2, "request_bytes");
        drop_hook(L, t);
        return 2;
    }
    drop_hook(L, t);
    if (rc != CURLE_OK) {
        long request_bytes = 0;
        int too_large = t->too_large || rc == CURLE_FILESIZE_EXCEEDED, connected;
        char message[96];
        /* -1 when libcurl cannot tell: only a counted 0 may ever mean "nothing written". */
        if (curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &request_bytes) != CURLE_OK ||
            request_bytes < 0)
            request_bytes = -1;
        connected = was_connected(t, request_bytes);
        if (too_large)
            snprintf(message, sizeof message, "response body exceeds the %llu-byte cap",
                     (unsigned long long)t->body.limit);
        lua_pushnil(L);
        push_facts(L, rc, too_large ? message : t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc),
                   request_bytes, connected, reached_pretransfer(t), too_large);
        if (curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status > 0) {
            mr_push_integer(L, status);
            lua_setfield(L, -2, "status");
        }
        push_timing(L, t, connected);
        return 2;
    }
    if (curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    lua_createtable(L, 0, 5);
    mr_push_integer(L, status);
    lua_setfield(L, -2, "status");
    lua_createtable(L, 0, 16); /* a typical response's headers, without rehashing */
    mr_parse_headers(t->head.data ? t->head.data : "", t->head.len, set_header, L);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, t->body.data ? t->body.data : "", t->body.len);
    lua_setfield(L, -2, "body");
    push_timing(L, t, 1);
    lua_pushnil(L);
    return 2;
}
