/* The HTTP session object: shared caches, a blocking handle and a multi. */
#ifndef MR_SESSION_H
#define MR_SESSION_H

#include <curl/curl.h>
#include <lua.h>

#include "transfer.h"

#define MR_SESSION_MT "maintenance_report.session"

typedef struct {
    mr_http_config cfg;
    CURLSH *share;         /* DNS cache and TLS sessions, for both paths */
    mr_transfer *blocking; /* reused, so its connection stays alive */
    CURLM *multi;          /* created on first submit */
    mr_transfer *inflight;
    mr_transfer *done;     /* finished, kept until a perform has handed them to Lua */
    mr_transfer *idle;
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

#endif
