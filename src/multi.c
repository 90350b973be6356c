/* The session's curl multi handle: many transfers, driven without blocking. */
#include <stdlib.h>
#include <time.h>

#include "compat.h"
#include "session.h"

static mr_transfer *take_idle(mr_session *s)
{
    mr_transfer *t = s->idle;
    if (t != NULL) {
        s->idle = t->next;
        t->next = NULL;
        return t;
    }
    return mr_transfer_new();
}

static void unlink_inflight(mr_session *s, mr_transfer *t)
{
    mr_transfer **p;
    for (p = &s->inflight; *p != NULL; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            break;
        }
    }
    t->next = NULL;
}

/* Back to the idle list; the easy handle keeps no connection of its own in a multi. */
static void retire(mr_session *s, mr_transfer *t)
{
    curl_multi_remove_handle(s->multi, t->easy);
    unlink_inflight(s, t);
    s->running--;
    t->next = s->idle;
    s->idle = t;
}

void mr_multi_close(mr_session *s)
{
    mr_transfer *t, *next;
    for (t = s->inflight; t != NULL; t = next) {
        next = t->next;
        curl_multi_remove_handle(s->multi, t->easy);
        mr_transfer_free(t);
    }
    for (t = s->idle; t != NULL; t = next) {
        next = t->next;
        mr_transfer_free(t);
    }
    s->inflight = s->idle = NULL;
    s->running = 0;
    if (s->multi != NULL)
        curl_multi_cleanup(s->multi);
    s->multi = NULL;
}

/* session:submit(request) → id | nil, err. Nothing is sent until perform. */
int mr_session_submit(lua_State *L)
{
    mr_session *s = mr_check_session(L, 1);
    mr_transfer *t;
    const char *err;
    luaL_checktype(L, 2, LUA_TTABLE);
    if (s->multi == NULL) {
        s->multi = curl_multi_init();
        if (s->multi == NULL)
            return mr_push_transport_error(L, "out_of_memory", "cannot create a libcurl multi handle");
    }
    t = take_idle(s);
    if (t == NULL)
        return mr_push_transport_error(L, "out_of_memory", "cannot create a libcurl easy handle");
    /* Keep t reachable while setup may raise on a bad option type. */
    t->next = s->idle;
    s->idle = t;
    err = mr_transfer_setup(L, 2, t, &s->cfg, s->share);
    s->idle = t->next;
    t->next = NULL;
    if (err == NULL && curl_multi_add_handle(s->multi, t->easy) != CURLM_OK)
        err = "libcurl refused the transfer";
    if (err != NULL) {
        t->next = s->idle;
        s->idle = t;
        return mr_push_transport_error(L, "invalid_request", err);
    }
    t->id = s->next_id++;
    t->next = s->inflight;
    s->inflight = t;
    s->running++;
    mr_push_integer(L, (long long)t->id);
    return 1;
}

/* Moves finished transfers into the result list at the stack top. */
static int collect(lua_State *L, mr_session *s, int results)
{
    CURLMsg *msg;
    int left, count = 0;
    while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
        mr_transfer *t = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t) != CURLE_OK || t == NULL)
            continue;
        lua_createtable(L, 0, 3);
        mr_push_integer(L, (long long)t->id);
        lua_setfield(L, -2, "id");
        mr_transfer_push_result(L, t, msg->data.result);
        lua_setfield(L, -3, "error"); /* nil when it succeeded */
        lua_setfield(L, -2, "response"); /* nil when it failed */
        retire(s, t);
        lua_rawseti(L, results, (int)lua_rawlen(L, results) + 1);
        count++;
    }
    return count;
}

/*
 * session:perform(timeout) → list of {id=, response=} or {id=, error=}.
 * Waits in curl_multi_poll, at most timeout seconds rounded up to the
 * millisecond (0: just poll), and returns as soon as at least one transfer
 * has finished.
 */
int mr_session_perform(lua_State *L)
{
    mr_session *s = mr_check_session(L, 1);
    double timeout = luaL_optnumber(L, 2, 0);
    struct timespec start, now;
    int results, running = 0;
    luaL_argcheck(L, timeout >= 0, 2, "timeout must not be negative");
    lua_newtable(L);
    results = lua_gettop(L);
    if (s->multi == NULL || s->running == 0)
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        double left;
        int numfds = 0, ms;
        CURLMcode mc = curl_multi_perform(s->multi, &running);
        if (mc != CURLM_OK)
            return luaL_error(L, "curl_multi_perform: %s", curl_multi_strerror(mc));
        if (collect(L, s, results) > 0 || s->running == 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = timeout - ((double)(now.tv_sec - start.tv_sec) +
                          (double)(now.tv_nsec - start.tv_nsec) / 1e9);
        if (!(left > 0))
            break; /* the caller's budget is spent */
        /* Whole milliseconds, rounded up: truncated, a sub-millisecond rest
           could not be waited for, and a caller waiting for a timer spun
           through empty performs until it was due. The overshoot is under
           1 ms. math.huge is a valid timeout; (int) of it would be undefined. */
        ms = left * 1000.0 < 2147483646.0 ? (int)(left * 1000.0) : 2147483646;
        if ((double)ms < left * 1000.0)
            ms++;
        mc = curl_multi_poll(s->multi, NULL, 0, ms, &numfds);
        if (mc != CURLM_OK)
            return luaL_error(L, "curl_multi_poll: %s", curl_multi_strerror(mc));
    }
    return 1;
}

int mr_session_pending(lua_State *L)
{
    mr_session *s = mr_check_session(L, 1);
    lua_pushinteger(L, s->running);
    return 1;
}

/* session:cancel(id) → true if it was in flight. */
int mr_session_cancel(lua_State *L)
{
    mr_session *s = mr_check_session(L, 1);
    lua_Integer id = luaL_checkinteger(L, 2);
    mr_transfer *t;
    for (t = s->inflight; t != NULL; t = t->next) {
        if (t->id == id) {
            retire(s, t);
            lua_pushboolean(L, 1);
            return 1;
        }
    }
    lua_pushboolean(L, 0);
    return 1;
}
