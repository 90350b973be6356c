/* maintenance_report.hiredis: a blocking Redis connection through hiredis,
   for the Redis ledger store outside nginx (inside nginx, lua-resty-redis on
   cosockets does the same job). Bytes and bindings only: which commands and
   scripts run, and what their replies mean, is decided in Lua
   (lua/maintenance_report/ledger/redis.lua).

     hiredis.connect(host, port, timeout) -> conn | nil, message, kind
     conn:call(name, arg, ...)            -> reply | nil, message, kind
     conn:close()

   kind is "timeout", "io" (the connection is unusable and has been closed),
   "connect" or "reply" (Redis answered with an error; the connection stays
   usable). A reply is a string (bulk and status replies), an integer, false
   (a nil reply, so that arrays keep their length) or an array table. */
#include <errno.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <lauxlib.h>
#include <lua.h>

#define CONN_META "maintenance_report.hiredis.conn"
#define REPLY_META "maintenance_report.hiredis.reply"
/* hiredis nests arrays only as deep as the server sends; Lua's C stack is the limit here. */
#define MAX_DEPTH 16

int luaopen_maintenance_report_hiredis(lua_State *L);

typedef struct {
    redisContext *ctx;
} Conn;

/* A reply boxed in a userdata, so that a Lua error while converting it
   (out of memory) still frees it through __gc. */
typedef struct {
    redisReply *reply;
} ReplyBox;

static struct timeval to_timeval(double seconds)
{
    struct timeval tv;
    if (seconds < 0.001)
        seconds = 0.001;
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    return tv;
}

static Conn *check_conn(lua_State *L)
{
    return luaL_checkudata(L, 1, CONN_META);
}

static void close_conn(Conn *c)
{
    if (c->ctx != NULL) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
}

/* nil, message, kind for a context error; the context is freed: hiredis
   leaves it unusable after any I/O or protocol error. */
static int push_ctx_error(lua_State *L, Conn *c, const char *fallback)
{
    int timed_out;
    const char *message = fallback;
    if (c->ctx != NULL && c->ctx->errstr[0] != '\0')
        message = c->ctx->errstr;
    timed_out = c->ctx != NULL && c->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    lua_pushnil(L);
    lua_pushstring(L, message);
    lua_pushstring(L, timed_out ? "timeout" : "io");
    close_conn(c);
    return 3;
}

static int l_connect(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    int port = (int)luaL_checkinteger(L, 2);
    double timeout = luaL_optnumber(L, 3, 1.0);
    struct timeval tv = to_timeval(timeout);
    Conn *c;
    luaL_argcheck(L, port > 0 && port < 65536, 2, "port out of range");
    /* the userdata first: if it cannot be allocated, no context is leaked */
    c = lua_newuserdata(L, sizeof(Conn));
    c->ctx = NULL;
    luaL_getmetatable(L, CONN_META);
    lua_setmetatable(L, -2);
    c->ctx = redisConnectWithTimeout(host, port, tv);
    if (c->ctx == NULL) {
        lua_pushnil(L);
        lua_pushstring(L, "cannot allocate a Redis context");
        lua_pushstring(L, "connect");
        return 3;
    }
    if (c->ctx->err) {
        int timed_out = c->ctx->err == REDIS_ERR_IO && (errno == EINPROGRESS || errno == ETIMEDOUT);
        lua_pushnil(L);
        lua_pushstring(L, c->ctx->errstr);
        lua_pushstring(L, timed_out ? "timeout" : "connect");
        close_conn(c);
        return 3;
    }
    if (redisSetTimeout(c->ctx, tv) != REDIS_OK) {
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_pushstring(L, "cannot set the Redis socket timeout");
        lua_pushstring(L, "connect");
        close_conn(c);
        return 3;
    }
    return 1;
}

static void push_reply(lua_State *L, const redisReply *r, int depth)
{
    size_t i;
    luaL_checkstack(L, 3, "Redis reply too deep");
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushinteger(L, (lua_Integer)r->integer);
        break;
    case REDIS_REPLY_ARRAY:
        if (depth >= MAX_DEPTH)
            luaL_error(L, "Redis reply nested deeper than %d", MAX_DEPTH);
        lua_createtable(L, (int)r->elements, 0);
        for (i = 0; i < r->elements; i++) {
            push_reply(L, r->element[i], depth + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    default: /* REDIS_REPLY_NIL */
        lua_pushboolean(L, 0);
        break;
    }
}

static int l_call(lua_State *L)
{
    Conn *c = check_conn(L);
    int argc = lua_gettop(L) - 1, i;
    const char **argv;
    size_t *lens;
    ReplyBox *box;
    redisReply *reply;
    luaL_argcheck(L, argc >= 1, 2, "a command name is required");
    if (c->ctx == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "the Redis connection is closed");
        lua_pushliteral(L, "io");
        return 3;
    }
    for (i = 2; i <= argc + 1; i++) {
        int t = lua_type(L, i);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            return luaL_argerror(L, i, "Redis arguments must be strings or numbers");
    }
    /* userdata, not malloc: collected even if a later step raises */
    argv = lua_newuserdata(L, sizeof(char *) * (size_t)argc);
    lens = lua_newuserdata(L, sizeof(size_t) * (size_t)argc);
    box = lua_newuserdata(L, sizeof(ReplyBox));
    box->reply = NULL;
    luaL_getmetatable(L, REPLY_META);
    lua_setmetatable(L, -2);
    for (i = 0; i < argc; i++) {
        /* numbers are converted in place: the stack keeps the strings alive */
        argv[i] = lua_tolstring(L, i + 2, &lens[i]);
    }
    reply = redisCommandArgv(c->ctx, argc, argv, lens);
    if (reply == NULL)
        return push_ctx_error(L, c, "the Redis connection failed");
    box->reply = reply;
    if (reply->type == REDIS_REPLY_ERROR) {
        lua_pushnil(L);
        lua_pushlstring(L, reply->str, reply->len);
        lua_pushliteral(L, "reply");
    } else {
        push_reply(L, reply, 0);
        lua_pushnil(L);
        lua_pushnil(L);
    }
    box->reply = NULL;
    freeReplyObject(reply);
    return 3;
}

static int l_close(lua_State *L)
{
    close_conn(check_conn(L));
    return 0;
}

static int l_reply_gc(lua_State *L)
{
    ReplyBox *box = luaL_checkudata(L, 1, REPLY_META);
    if (box->reply != NULL) {
        freeReplyObject(box->reply);
        box->reply = NULL;
    }
    return 0;
}

int luaopen_maintenance_report_hiredis(lua_State *L)
{
    static const luaL_Reg conn_methods[] = {
        { "call", l_call },
        { "close", l_close },
        { NULL, NULL },
    };
    int i;
    luaL_newmetatable(L, REPLY_META);
    lua_pushcfunction(L, l_reply_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, CONN_META);
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    for (i = 0; conn_methods[i].name != NULL; i++) {
        lua_pushcfunction(L, conn_methods[i].func);
        lua_setfield(L, -2, conn_methods[i].name);
    }
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushcfunction(L, l_connect);
    lua_setfield(L, -2, "connect");
    return 1;
}
