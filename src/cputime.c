/* core.thread_cputime(): CPU seconds of the calling thread, for work budgets.
   Process CPU time (os.clock) would also count libcurl's resolver threads,
   which run beside the host's loop rather than in it.
   core.thread_usage(): that thread's getrusage counters, so that a step over
   its budget can be told apart: page faults and preemptions are the kernel's.
   Its user/system seconds are sampled at the scheduler tick (a few ms). */
#define _GNU_SOURCE /* RUSAGE_THREAD (Linux); without it, the process's counters */
#include <sys/resource.h>
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

static void set_seconds(lua_State *L, const char *name, struct timeval tv)
{
    lua_pushnumber(L, (lua_Number)tv.tv_sec + (lua_Number)tv.tv_usec / 1e6);
    lua_setfield(L, -2, name);
}

static void set_count(lua_State *L, const char *name, long n)
{
    mr_push_integer(L, (long long)n);
    lua_setfield(L, -2, name);
}

static int l_thread_usage(lua_State *L)
{
    struct rusage u;
#ifdef RUSAGE_THREAD
    int who = RUSAGE_THREAD;
#else
    int who = RUSAGE_SELF;
#endif
    if (getrusage(who, &u) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, "getrusage failed");
        return 2;
    }
    lua_createtable(L, 0, 6);
    set_seconds(L, "user", u.ru_utime);
    set_seconds(L, "system", u.ru_stime);
    set_count(L, "minor_faults", u.ru_minflt);
    set_count(L, "major_faults", u.ru_majflt);
    set_count(L, "voluntary_switches", u.ru_nvcsw);
    set_count(L, "involuntary_switches", u.ru_nivcsw);
    return 1;
}

void mr_cputime_register(lua_State *L)
{
    lua_pushcfunction(L, l_thread_usage);
    lua_setfield(L, -2, "thread_usage");
    lua_pushcfunction(L, l_thread_cputime);
    lua_setfield(L, -2, "thread_cputime");
}
