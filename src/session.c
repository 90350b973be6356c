/* core.session(opts): libcurl state reused across calls, and blocking requests. */
#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "core.h"
#include "options.h"

mr_session *mr_check_session(lua_State *L, int idx)
{
    mr_session *s = luaL_checkudata(L, idx, MR_SESSION_MT);
    if (s->closed)
        luaL_error(L, "session is closed");
    return s;
}

static void session_close(mr_session *s)
{
    if (s->closed)
        return;
    s->closed = 1;
    mr_multi_close(s);
    mr_transfer_free(s->blocking);
    s->blocking = NULL;
    if (s->share)
        curl_share_cleanup(s->share); /* after every handle using it is gone */
    s->share = NULL;
    free(s->cfg.cafile);
    free(s->cfg.capath);
    free(s->cfg.user_agent);
    s->cfg.cafile = s->cfg.capath = s->cfg.user_agent = NULL;
}

static int l_session_gc(lua_State *L)
{
    session_close(luaL_checkudata(L, 1, MR_SESSION_MT));
    return 0;
}

static int l_session_close(lua_State *L)
{
    session_close(luaL_checkudata(L, 1, MR_SESSION_MT));
    return 0;
}

/* session:request{url=, headers=, …} → response | nil, err */
static int l_session_request(lua_State *L)
{
    mr_session *s = mr_check_session(L, 1);
    const char *err;
    CURLcode rc;
    err = mr_transfer_setup(L, 2, s->blocking, &s->cfg, s->share);
    if (err != NULL)
        return mr_push_transport_error(L, "invalid_request", err);
    rc = curl_easy_perform(s->blocking->easy);
    return mr_transfer_push_result(L, s->blocking, rc);
}

/* A copy the session owns, since the options table may go away. */
static char *dup_option(lua_State *L, int idx, const char *key)
{
    const char *s = mr_opt_lstring(L, idx, "session option", key, NULL, NULL);
    char *copy;
    if (s == NULL)
        return NULL;
    copy = strdup(s);
    if (copy == NULL)
        luaL_error(L, "out of memory");
    return copy;
}

/* core.session{cafile=, capath=, insecure=, timeout=, connect_timeout=, max_body=, user_agent=} */
static int l_session_new(lua_State *L)
{
    mr_session *s;
    int opts;
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    else
        luaL_checktype(L, 1, LUA_TTABLE);
    opts = lua_isnoneornil(L, 1) ? lua_gettop(L) : 1;

    s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s); /* __gc copes with a half-built session */
    luaL_getmetatable(L, MR_SESSION_MT);
    lua_setmetatable(L, -2);
    s->next_id = 1;
    s->cfg.timeout = mr_opt_number(L, opts, "session option", "timeout", 10);
    s->cfg.connect_timeout = mr_opt_number(L, opts, "session option", "connect_timeout", 5);
    s->cfg.max_body =
        mr_size_cap(mr_opt_number(L, opts, "session option", "max_body", MR_DEFAULT_MAX_BODY));
    lua_getfield(L, opts, "insecure");
    s->cfg.insecure = lua_toboolean(L, -1);
    lua_pop(L, 1);
    s->cfg.cafile = dup_option(L, opts, "cafile");
    s->cfg.capath = dup_option(L, opts, "capath");
    s->cfg.user_agent = dup_option(L, opts, "user_agent");

    s->share = curl_share_init();
    if (s->share == NULL ||
        curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
        curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
        return luaL_error(L, "cannot create a libcurl share handle");
    s->blocking = mr_transfer_new();
    if (s->blocking == NULL)
        return luaL_error(L, "cannot create a libcurl easy handle");
    return 1;
}

void mr_session_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"request", l_session_request},
        {"submit", mr_session_submit},
        {"perform", mr_session_perform},
        {"pending", mr_session_pending},
        {"cancel", mr_session_cancel},
        {"close", l_session_close},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, MR_SESSION_MT)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_session_gc);
        lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
        lua_pushcfunction(L, l_session_close);
        lua_setfield(L, -2, "__close");
#endif
        lua_pushliteral(L, "maintenance_report.session");
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_session_new);
    lua_setfield(L, -2, "session");
}
