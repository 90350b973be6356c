/* The HTTP session object: shared caches, a blocking handle and a multi. */
#ifndef MR_SESSION_H
#define MR_SESSION_H

#include <curl/curl.h>
#include <lua.h>
#include <time.h>

#include "transfer.h"

#define MR_SESSION_MT "maintenance_report.session"

/* One socket curl asked to have watched (CURLMOPT_SOCKETFUNCTION), and what the host was told. */
typedef struct {
    curl_socket_t fd;
    int what;        /* CURL_POLL_IN/OUT/INOUT now; 0 once curl removed it */
    int told;        /* what session:watch() last reported; 0: nothing or "remove" */
    int must_remove; /* curl dropped it after the host was told: report "remove" first, as the
                        number may come back for a new socket the host's old watcher cannot see */
} mr_watched;

typedef struct {
    mr_http_config cfg;
    CURLSH *share;         /* DNS cache and TLS sessions, for both paths */
    mr_transfer *blocking; /* reused, so its connection stays alive */
    CURLM *multi;          /* created on first submit */
    long max_connections;  /* CURLMOPT_MAXCONNECTS of the multi; 0: libcurl's default */
    mr_transfer *inflight;
    mr_transfer *done;     /* finished, kept until a perform has handed them to Lua */
    mr_transfer *idle;
    mr_watched *watched;   /* the socket interface's view, for hosts that own the loop */
    size_t n_watched, cap_watched;
    int timer_armed;       /* CURLMOPT_TIMERFUNCTION: a timeout is due at timer_due */
    struct timespec timer_due;
    int timer_changed;     /* on_timer ran during the current socket action */
    int host_watches;      /* watch() was called: a host polls curl's sockets itself */
    curl_socket_t *closing; /* sockets curl closed while a host may still poll them */
    size_t n_closing, cap_closing, n_closing_told; /* the first n_closing_told were reported */
    lua_Integer next_id;
    int running;           /* submitted and not yet delivered: in flight or done */
    int busy;              /* inside a method: close waits, re-entry is refused */
    int close_deferred;
    int closed;
} mr_session;

/* Multi interface methods, in multi.c; each runs guarded (see session.c), s at index 1. */
int mr_session_submit(lua_State *L, mr_session *s);
int mr_session_perform(lua_State *L, mr_session *s);
int mr_session_pending(lua_State *L, mr_session *s);
int mr_session_cancel(lua_State *L, mr_session *s);
void mr_multi_close(mr_session *s);

/* The socket interface, in watch.c: callbacks installed on a new multi, and two methods. */
int mr_watch_install(mr_session *s);
int mr_watch_easy(mr_session *s, CURL *easy);
void mr_watch_close_sockets(mr_session *s);
void mr_watch_free(mr_session *s);
int mr_session_watch(lua_State *L, mr_session *s);
int mr_session_socket_action(lua_State *L, mr_session *s);
/* Shared with multi.c: moves finished transfers to done, and hands them to Lua. */
void mr_multi_harvest(mr_session *s);
void mr_multi_deliver(lua_State *L, mr_session *s);

/* core.thread_cputime, in cputime.c: the scheduler's budget clock. */
void mr_cputime_register(lua_State *L);

#endif
