/*
 * The multi handle's socket interface, for hosts that own the event loop
 * (libuv, cqueues, an editor): curl says which sockets it waits on and when
 * its next timeout is due (CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION);
 * session:watch() reports that, and session:socket_action() runs curl for
 * one event. The callbacks only record: nothing in them touches Lua.
 *
 * Once a host watches, a socket curl closes stays open until the host has been
 * told to stop watching it (the watch() call after the one reporting "remove"):
 * epoll-based hosts (libuv, cqueues) must drop a descriptor before it is closed,
 * and a number closed and reused at once would reach the host's old watcher.
 * perform (step) closes them all: whoever drives it polls nothing itself.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "session.h"

static mr_watched *find_watched(mr_session *s, curl_socket_t fd)
{
    size_t i;
    for (i = 0; i < s->n_watched; i++)
        if (s->watched[i].fd == fd)
            return &s->watched[i];
    return NULL;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    mr_session *s = userp;
    mr_watched *w = find_watched(s, fd);
    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w != NULL) {
            w->what = 0;
            if (w->told != 0)
                w->must_remove = 1;
        }
        return 0;
    }
    if (w == NULL) {
        if (s->n_watched == s->cap_watched) {
            size_t cap = s->cap_watched ? s->cap_watched * 2 : 8;
            mr_watched *grown = realloc(s->watched, cap * sizeof *grown);
            if (grown == NULL)
                return -1; /* curl fails the transfers; their errors reach Lua */
            s->watched = grown;
            s->cap_watched = cap;
        }
        w = &s->watched[s->n_watched++];
        memset(w, 0, sizeof *w);
        w->fd = fd;
    }
    w->what = what;
    return 0;
}

static void add_ms(struct timespec *t, long ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    mr_session *s = userp;
    (void)multi;
    if (timeout_ms < 0) {
        s->timer_armed = 0;
        s->timer_changed = 1;
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &s->timer_due);
    add_ms(&s->timer_due, timeout_ms);
    s->timer_armed = 1;
    s->timer_changed = 1;
    return 0;
}

/* After a timeout action curl calls on_timer only if its next expiry moved: a
   due time left in the past would then be reported as due again and again. */
static void refresh_timer(mr_session *s)
{
    long ms = -1;
    if (curl_multi_timeout(s->multi, &ms) != CURLM_OK || ms < 0) {
        s->timer_armed = 0;
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &s->timer_due);
    add_ms(&s->timer_due, ms);
    s->timer_armed = 1;
}

static int on_close(void *userp, curl_socket_t fd)
{
    mr_session *s = userp;
    if (s->host_watches && s->multi != NULL) {
        if (s->n_closing == s->cap_closing) {
            size_t cap = s->cap_closing ? s->cap_closing * 2 : 8;
            curl_socket_t *grown = realloc(s->closing, cap * sizeof *grown);
            if (grown == NULL)
                return close(fd); /* the host may see an error on it: better than a leak */
            s->closing = grown;
            s->cap_closing = cap;
        }
        s->closing[s->n_closing++] = fd;
        return 0;
    }
    return close(fd);
}

/* Closes the sockets whose removal an earlier watch() reported (all: every one). */
static void close_told(mr_session *s, int all)
{
    size_t i, n = all ? s->n_closing : s->n_closing_told;
    for (i = 0; i < n; i++)
        close(s->closing[i]);
    memmove(s->closing, s->closing + n, (s->n_closing - n) * sizeof *s->closing);
    s->n_closing -= n;
    s->n_closing_told = 0;
}

void mr_watch_close_sockets(mr_session *s)
{
    if (s->closing != NULL)
        close_told(s, 1);
}

/* Every multi transfer closes its sockets through on_close. */
int mr_watch_easy(mr_session *s, CURL *easy)
{
    if (curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_close) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, s) != CURLE_OK)
        return -1;
    return 0;
}

int mr_watch_install(mr_session *s)
{
    if (curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s) != CURLM_OK ||
        curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s) != CURLM_OK)
        return -1;
    return 0;
}

void mr_watch_free(mr_session *s)
{
    mr_watch_close_sockets(s);
    free(s->closing);
    s->closing = NULL;
    s->n_closing = s->cap_closing = s->n_closing_told = 0;
    free(s->watched);
    s->watched = NULL;
    s->n_watched = s->cap_watched = 0;
    s->timer_armed = 0;
}

static const char *events_name(int what)
{
    switch (what) {
    case CURL_POLL_IN: return "r";
    case CURL_POLL_OUT: return "w";
    case CURL_POLL_INOUT: return "rw";
    default: return "remove";
    }
}

static void push_change(lua_State *L, int *n, curl_socket_t fd, int what)
{
    lua_createtable(L, 0, 2);
    mr_push_integer(L, (long long)fd);
    lua_setfield(L, -2, "fd");
    lua_pushstring(L, events_name(what));
    lua_setfield(L, -2, "events");
    lua_rawseti(L, -2, ++*n);
}

/*
 * session:watch() → changes, timeout. changes: the list of {fd=, events=} since
 * the last call, in the order to apply them; events "r", "w", "rw" (watch for
 * that from now on) or "remove" (stop watching; the number may come back as
 * a new socket). timeout: seconds until curl's next timeout (0: due now), or
 * nil when curl has none. A memory error raised while building the list
 * loses nothing: an entry is marked told only once it is in the list.
 */
int mr_session_watch(lua_State *L, mr_session *s)
{
    size_t i, kept = 0;
    int n = 0;
    s->host_watches = 1;
    if (s->closing != NULL)
        close_told(s, 0); /* their "remove" went out in an earlier call */
    lua_newtable(L);
    for (i = 0; i < s->n_watched; i++) {
        mr_watched *w = &s->watched[i];
        if (w->must_remove) {
            push_change(L, &n, w->fd, 0);
            w->must_remove = 0;
            w->told = 0;
        }
        if (w->what != w->told) {
            push_change(L, &n, w->fd, w->what);
            w->told = w->what;
        }
    }
    for (i = 0; i < s->n_watched; i++) /* forget what is gone and was reported gone */
        if (s->watched[i].what != 0 || s->watched[i].told != 0 || s->watched[i].must_remove)
            s->watched[kept++] = s->watched[i];
    s->n_watched = kept;
    s->n_closing_told = s->n_closing; /* reported by this call: closed by the next */
    if (s->multi != NULL && s->timer_armed) {
        struct timespec now;
        double left;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left = (double)(s->timer_due.tv_sec - now.tv_sec) + (double)(s->timer_due.tv_nsec - now.tv_nsec) / 1e9;
        lua_pushnumber(L, left > 0 ? left : 0);
    } else {
        lua_pushnil(L);
    }
    return 2;
}

static int events_mask(lua_State *L, int idx)
{
    const char *ev = luaL_optstring(L, idx, "");
    int mask = 0;
    for (; *ev != '\0'; ev++) {
        if (*ev == 'r')
            mask |= CURL_CSELECT_IN;
        else if (*ev == 'w')
            mask |= CURL_CSELECT_OUT;
        else if (*ev == 'e')
            mask |= CURL_CSELECT_ERR;
        else
            luaL_argerror(L, idx, "events must be made of r, w and e");
    }
    return mask;
}

/*
 * session:socket_action(fd, events) → list of {id=, response=} or {id=, error=}
 * (as perform). fd nil: curl's timeout is due; else the socket and what it is
 * ready for ("r", "w", "rw", "e" for an error; "" lets curl find out).
 * Never waits.
 */
int mr_session_socket_action(lua_State *L, mr_session *s)
{
    curl_socket_t fd = CURL_SOCKET_TIMEOUT;
    int mask, running = 0;
    CURLMcode mc;
    mr_transfer *t;
    if (!lua_isnoneornil(L, 2)) {
        lua_Integer n = luaL_checkinteger(L, 2);
        luaL_argcheck(L, n >= 0 && n <= 0x7fffffff, 2, "not a file descriptor");
        fd = (curl_socket_t)n;
    }
    mask = events_mask(L, 3);
    if (s->multi == NULL) {
        lua_newtable(L);
        return 1;
    }
    /* before_send hooks run inside curl, on this call's state (see perform). */
    for (t = s->inflight; t != NULL; t = t->next)
        mr_transfer_enter(t, L);
    s->timer_changed = 0;
    mc = curl_multi_socket_action(s->multi, fd, mask, &running);
    if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET)
        return luaL_error(L, "curl_multi_socket_action: %s", curl_multi_strerror(mc));
    if (fd == CURL_SOCKET_TIMEOUT && !s->timer_changed)
        refresh_timer(s);
    mr_multi_harvest(s);
    mr_multi_deliver(L, s);
    return 1;
}
