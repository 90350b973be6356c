/* core.session(opts): libcurl state reused across calls, and blocking requests. */
#include "session.h"

#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "core.h"
#include "options.h"

typedef int (*session_method)(lua_State *L, mr_session *s);

static void session_close(mr_session *s)
{
    if (s->closed)
        return;
    if (s->busy) {
        /* A finalizer run by an allocation inside a method: freeing now would
           pull the transfers from under it. The method closes on its way out. */
        s->close_deferred = 1;
        return;
    }
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

/* Upvalue 1: a userdata holding the method's pointer. */
static int method_body(lua_State *L)
{
    session_method *m = lua_touserdata(L, lua_upvalueindex(1));
    return (*m)(L, lua_touserdata(L, 1));
}

/*
 * Every method runs in a protected call with the session marked busy: a
 * memory error raised inside still clears the mark and lets a close that
 * came meanwhile happen, and a finalizer cannot close the session under it
 * (nothing here allocates before the mark is set, so no finalizer runs in
 * between). The callee's frame anchors the session until the call returns.
 */
static int run_guarded(lua_State *L)
{
    mr_session *s = luaL_checkudata(L, 1, MR_SESSION_MT);
    int rc;
    if (s->closed || s->close_deferred)
        return luaL_error(L, "session is closed");
    if (s->busy)
        return luaL_error(L, "session is busy: called from a finalizer during another of its calls");
    lua_pushvalue(L, lua_upvalueindex(1)); /* within the LUA_MINSTACK slots a C function gets */
    lua_insert(L, 1);
    s->busy = 1;
    rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    s->busy = 0;
    if (s->close_deferred)
        session_close(s);
    if (rc != 0)
        return lua_error(L);
    return lua_gettop(L);
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
static int session_request(lua_State *L, mr_session *s)
{
    mr_setup_error err;
    CURLcode rc;
    if (mr_transfer_setup(L, 2, s->blocking, &s->cfg, s->share, &err) != 0)
        return mr_push_setup_error(L, &err);
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

/* A default of the library: the Lua module maintenance_report.defaults holds
   them all, so that the C core has no numbers of its own to drift apart. */
static double library_default(lua_State *L, const char *name)
{
    double value;
    lua_getglobal(L, "require");
    if (!lua_isfunction(L, -1))
        luaL_error(L, "core.session: no require() to load maintenance_report.defaults");
    lua_pushliteral(L, "maintenance_report.defaults");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, name);
    if (!lua_isnumber(L, -1))
        luaL_error(L, "core.session: maintenance_report.defaults.%s is not a number", name);
    value = lua_tonumber(L, -1);
    lua_pop(L, 2);
    return value;
}

/* core.session{cafile=, capath=, insecure=, timeout=, connect_timeout=, max_body=, user_agent=,
   max_connections=}; absent limits come from maintenance_report.defaults. max_connections: the
   idle connections the non-blocking side keeps (absent or 0: libcurl's 4 per transfer ever added
   at once, which a batch whose every order takes a fresh connection fills up to). */
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
    s->cfg.timeout = mr_opt_number(L, opts, "session option", "timeout", library_default(L, "TIMEOUT"));
    s->cfg.connect_timeout = mr_opt_number(L, opts, "session option", "connect_timeout",
                                           library_default(L, "CONNECT_TIMEOUT"));
    s->cfg.max_body = mr_size_cap(
        mr_opt_number(L, opts, "session option", "max_body", library_default(L, "MAX_BODY")));
    {
        double max_connections = mr_opt_number(L, opts, "session option", "max_connections", 0);
        if (max_connections > 1e6 || max_connections != (double)(long)max_connections)
            return luaL_error(L, "session option 'max_connections' must be a whole number up to 1000000");
        s->max_connections = (long)max_connections;
    }
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
    static const struct {
        const char *name;
        session_method fn;
    } methods[] = {
        {"request", session_request},
        {"submit", mr_session_submit},
        {"perform", mr_session_perform},
        {"pending", mr_session_pending},
        {"cancel", mr_session_cancel},
        {"watch", mr_session_watch},
        {"socket_action", mr_session_socket_action},
    };
    size_t i;
    if (luaL_newmetatable(L, MR_SESSION_MT)) {
        lua_newtable(L);
        for (i = 0; i < sizeof methods / sizeof methods[0]; i++) {
            /* The body is a closure over the method pointer; run_guarded over the body. */
            session_method *box = lua_newuserdata(L, sizeof *box);
            *box = methods[i].fn;
            lua_pushcclosure(L, method_body, 1);
            lua_pushcclosure(L, run_guarded, 1);
            lua_setfield(L, -2, methods[i].name);
        }
        lua_pushcfunction(L, l_session_close);
        lua_setfield(L, -2, "close");
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
    mr_cputime_register(L);
}
