/*
 * For `make asan` only, preloaded into lua5.4 after libasan:
 * - drops LD_PRELOAD from the environment once the loader has used it, so the
 *   processes the specs start (sh, nginx, curl, python3) run without the
 *   sanitizer runtime; it stays in MR_ASAN_LD_PRELOAD for a spec that starts
 *   another Lua interpreter, which loads the sanitized core.so again;
 * - makes dlclose a no-op, so that core.so is still mapped when LeakSanitizer
 *   runs at exit and its frames in a leak report have names and lines.
 */
#include <dlfcn.h>
#include <stdlib.h>

static void scrub_preload(void) __attribute__((constructor));

static void scrub_preload(void)
{
    const char *preload = getenv("LD_PRELOAD");
    if (preload != NULL)
        setenv("MR_ASAN_LD_PRELOAD", preload, 1);
    unsetenv("LD_PRELOAD");
}

int dlclose(void *handle)
{
    (void)handle;
    return 0;
}
