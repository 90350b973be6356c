/* The session's curl multi handle: many transfers, driven without blocking. */
#include <stdlib.h>
#include <time.h>

#include "compat.h"
#include "signals.h"
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

/* Removes t from the list at *head, if it is there; 1 when it was. */
static int unlink_from(mr_transfer **head, mr_transfer *t)
{
    mr_transfer **p;
    for (p = head; *p != NULL; p = &(*p)->next) {
        if (*p == t) {
            *p = t->next;
            t->next = NULL;
            return 1;
        }
    }
    return 0;
}

/* Off the multi and back to the idle list; the easy handle keeps no connection of its own in a multi. */
static void retire(mr_session *s, mr_transfer *t)
{
    curl_multi_remove_handle(s->multi, t->easy);
    s->running--;
    t->next = s->idle;
    s->idle = t;
}

static void free_list(mr_session *s, mr_transfer *t)
{
    while (t != NULL) {
        mr_transfer *next = t->next;
        if (s->multi != NULL)
            curl_multi_remove_handle(s->multi, t->easy);
        mr_transfer_free(t);
        t = next;
    }
}

void mr_multi_close(mr_session *s)
{
    free_list(s, s->inflight);
    free_list(s, s->done);
    free_list(s, s->idle);
    s->inflight = s->done = s->idle = NULL;
    s->running = 0;
    if (s->multi != NULL)
        curl_multi_cleanup(s->multi); /* may still call the socket callback */
    s->multi = NULL;
    mr_watch_free(s);
}

/* session:submit(request) → id | nil, err. Nothing is sent until perform. */
int mr_session_submit(lua_State *L, mr_session *s)
{
    mr_transfer *t;
    mr_setup_error err;
    int rc;
    luaL_checktype(L, 2, LUA_TTABLE);
    err.code = CURLE_OUT_OF_MEMORY;
    if (s->multi == NULL) {
        if ((s->multi = curl_multi_init()) == NULL) {
            err.message = "cannot create a libcurl multi handle";
            return mr_push_setup_error(L, &err);
        }
        if (s->max_connections > 0 &&
            curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, s->max_connections) != CURLM_OK) {
            curl_multi_cleanup(s->multi);
            s->multi = NULL;
            err.message = "cannot set the libcurl multi handle's connection cache size";
            err.code = CURLE_FAILED_INIT;
            return mr_push_setup_error(L, &err);
        }
        if (mr_watch_install(s) != 0) {
            curl_multi_cleanup(s->multi);
            s->multi = NULL;
            err.message = "cannot set the libcurl multi handle's socket callbacks";
            err.code = CURLE_FAILED_INIT;
            return mr_push_setup_error(L, &err);
        }
    }
    if ((t = take_idle(s)) == NULL) {
        err.message = "cannot create a libcurl easy handle";
        return mr_push_setup_error(L, &err);
    }
    /* Keep t reachable while setup may raise on a bad option type. */
    t->next = s->idle;
    s->idle = t;
    rc = mr_transfer_setup(L, 2, t, &s->cfg, s->share, &err);
    if (rc == 0 && mr_watch_easy(s, t->easy) != 0) {
        err.message = "cannot set the transfer's close-socket callback";
        err.code = CURLE_FAILED_INIT;
        rc = -1;
    }
    if (rc == 0) {
        CURLMcode mc = curl_multi_add_handle(s->multi, t->easy);
        if (mc != CURLM_OK) {
            err.message = curl_multi_strerror(mc);
            err.code = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT;
            rc = -1;
        }
    }
    if (rc != 0)
        return mr_push_setup_error(L, &err); /* t stays idle */
    s->idle = t->next;
    t->id = s->next_id++;
    t->next = s->inflight;
    s->inflight = t;
    s->running++;
    mr_push_integer(L, (long long)t->id);
    return 1;
}

/* Moves every finished transfer from in flight to done, in C only: nothing here can raise. */
void mr_multi_harvest(mr_session *s)
{
    CURLMsg *msg;
    mr_transfer **tail = &s->done;
    int left;
    while (*tail != NULL)
        tail = &(*tail)->next;
    while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
        mr_transfer *t = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t) != CURLE_OK || t == NULL)
            continue;
        if (!unlink_from(&s->inflight, t))
            continue;
        t->result = msg->data.result;
        *tail = t; /* in the order they finished */
        tail = &t->next;
    }
}

/*
 * Builds the list of {id=, response=} / {id=, error=} from the done list,
 * then retires them all. A memory error while building leaves every one of
 * them done, for the next perform.
 */
void mr_multi_deliver(lua_State *L, mr_session *s)
{
    mr_transfer *t;
    int i = 0;
    for (t = s->done; t != NULL; t = t->next)
        i++;
    lua_createtable(L, i, 0);
    for (t = s->done, i = 1; t != NULL; t = t->next, i++) {
        lua_createtable(L, 0, 3);
        mr_push_integer(L, (long long)t->id);
        lua_setfield(L, -2, "id");
        mr_transfer_push_result(L, t, t->result);
        lua_setfield(L, -3, "error");    /* nil when it succeeded */
        lua_setfield(L, -2, "response"); /* nil when it failed */
        lua_rawseti(L, -2, i);
    }
    while ((t = s->done) != NULL) {
        s->done = t->next;
        retire(s, t);
    }
}

/*
 * session:perform(timeout) → list of {id=, response=} or {id=, error=}.
 * Waits in curl_multi_poll, at most timeout seconds rounded up to the
 * millisecond (0: just poll), and returns as soon as at least one transfer
 * has finished.
 */
int mr_session_perform(lua_State *L, mr_session *s)
{
    double timeout = luaL_optnumber(L, 2, 0);
    struct timespec start, now;
    int running = 0;
    mr_transfer *t;
    luaL_argcheck(L, timeout >= 0, 2, "timeout must not be negative");
    if (s->multi == NULL || s->running == 0) {
        lua_newtable(L);
        return 1;
    }
    /* before_send hooks run inside curl_multi_perform, on this call's state:
       the thread that submitted a transfer may be gone by now. */
    for (t = s->inflight; t != NULL; t = t->next)
        mr_transfer_enter(t, L);
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (s->done == NULL && s->inflight != NULL) {
        double left;
        int numfds = 0, ms;
        CURLMcode mc = curl_multi_perform(s->multi, &running);
        if (mc != CURLM_OK)
            return luaL_error(L, "curl_multi_perform: %s", curl_multi_strerror(mc));
        mr_multi_harvest(s);
        if (s->done != NULL)
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
        if (mr_signal_pending())
            break; /* Lua raises "interrupted!" as soon as it runs again */
    }
    mr_multi_deliver(L, s);
    /* Driven by perform, nobody polls curl's sockets now: what it closed, close now. */
    mr_watch_close_sockets(s);
    return 1;
}

int mr_session_pending(lua_State *L, mr_session *s)
{
    lua_pushinteger(L, s->running);
    return 1;
}

/* session:cancel(id) → true if it was in flight or done but not yet delivered. */
int mr_session_cancel(lua_State *L, mr_session *s)
{
    lua_Integer id = luaL_checkinteger(L, 2);
    mr_transfer **lists[2], *t;
    int i;
    lists[0] = &s->inflight;
    lists[1] = &s->done;
    for (i = 0; i < 2; i++) {
        for (t = *lists[i]; t != NULL; t = t->next) {
            if (t->id == id) {
                unlink_from(lists[i], t);
                retire(s, t);
                lua_pushboolean(L, 1);
                return 1;
            }
        }
    }
    lua_pushboolean(L, 0);
    return 1;
}
