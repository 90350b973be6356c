/* core.thread_cputime(): CPU seconds of the calling thread, for work budgets.
   Process CPU time (os.clock) would also count libcurl's resolver threads,
   which run beside the host's loop rather than in it. */
#include <time.h>

#include "compat.h"
#include "session.h"

static int l_thread_cputime(lua_State *L)
{
    struct timespec t;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0) {
        lua_pushnumber(L, (lua_Number)clock() / CLOCKS_PER_SEC);
        return 1;
    }
    lua_pushnumber(L, (lua_Number)t.tv_sec + (lua_Number)t.tv_nsec / 1e9);
    return 1;
}

void mr_cputime_register(lua_State *L)
{
    lua_pushcfunction(L, l_thread_cputime);
    lua_setfield(L, -2, "thread_cputime");
}
