/* One HTTP exchange on a libcurl easy handle: set-up and result capture. */
#ifndef MR_TRANSFER_H
#define MR_TRANSFER_H

#include <curl/curl.h>
#include <lua.h>

#include "buf.h"


/* A byte count from a non-negative number, capped: converting math.huge or
   1e300 to size_t is undefined behaviour. */
static inline size_t mr_size_cap(double v)
{
    return v < (double)((size_t)-1 / 2) ? (size_t)v : (size_t)-1 / 2;
}

/* Session-wide settings applied to every transfer. */
typedef struct {
    char *cafile;
    char *capath;
    char *user_agent;
    int insecure;
    double timeout;         /* seconds, 0: none */
    double connect_timeout; /* seconds */
    size_t max_body;
} mr_http_config;

typedef struct mr_transfer {
    CURL *easy;
    struct curl_slist *headers;
    mr_buf body;
    mr_buf head; /* header lines of the latest response only */
    int too_large;
    CURLcode result; /* of a finished multi transfer not yet delivered to Lua */
    lua_Integer id;
    /* req.before_send: called once the connection stands, right before the
       request is written (CURLOPT_PREREQFUNCTION); a refusal stops it. */
    lua_State *L;         /* the state of the current call into the core */
    int hook_ref;         /* registry ref of the function, or LUA_NOREF */
    int refusal_ref;      /* registry slot for what a refusing hook returned */
    int hook_refused;
    /* The request-independent options are set once per handle, for this
       session's config and share (see mr_transfer_setup). */
    const mr_http_config *configured_for;
    CURLSH *configured_share;
    struct mr_transfer *next; /* idle, in-flight or done list */
    char errbuf[CURL_ERROR_SIZE];
} mr_transfer;

/* Points the transfer's before_send hook at the state now calling the core. */
static inline void mr_transfer_enter(mr_transfer *t, lua_State *L)
{
    t->L = L;
}

/* Why a request was not started: C's own refusal (code CURLE_OK), or libcurl's. */
typedef struct {
    const char *message; /* static */
    CURLcode code;
} mr_setup_error;

mr_transfer *mr_transfer_new(void);
void mr_transfer_free(mr_transfer *t);

/*
 * Reads the request table at index idx ({url=, method=, headers=, body=,
 * timeout=, connect_timeout=, max_body=, fresh_connect=}) and configures t.
 * Raises for wrong option types; returns 0, or -1 with *err set for a value
 * that must not be sent (CR/LF in a header, for example) or an option
 * libcurl refused.
 */
int mr_transfer_setup(lua_State *L, int idx, mr_transfer *t, const mr_http_config *cfg,
                      CURLSH *share, mr_setup_error *err);

/*
 * Pushes the response table and nil, or nil and the failure's facts:
 * {curl_code=, message=, request_bytes=, connected=, too_large=, status=?, time=, reused=}.
 * Returns 2.
 */
int mr_transfer_push_result(lua_State *L, mr_transfer *t, CURLcode rc);

/* Pushes nil and the table for a request never handed to libcurl's transfer:
   {kind="invalid_request", message=, request_bytes=0} for C's own refusal,
   else the facts of a libcurl failure before anything was sent. Returns 2. */
int mr_push_setup_error(lua_State *L, const mr_setup_error *err);

/*
 * Splits a raw header block into name/value pairs, skipping the status line.
 * Pure C so that it can be fuzzed. Returns the status code or -1.
 */
typedef void (*mr_header_cb)(void *ud, const char *name, size_t name_len,
                             const char *value, size_t value_len);
int mr_parse_headers(const char *data, size_t len, mr_header_cb cb, void *ud);

#endif
