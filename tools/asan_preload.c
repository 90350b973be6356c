/*
 * For `make asan` only, preloaded into lua5.4 after libasan:
 * - drops LD_PRELOAD from the environment once the loader has used it, so the
 *   processes the specs start (sh, nginx, curl, python3) run without the
 *   sanitizer runtime;
 * - makes dlclose a no-op, so that core.so is still mapped when LeakSanitizer
 *   runs at exit and its frames in a leak report have names and lines.
 */
#include <dlfcn.h>
#include <stdlib.h>

static void scrub_preload(void) __attribute__((constructor));

static void scrub_preload(void)
{
    unsetenv("LD_PRELOAD");
}

int dlclose(void *handle)
{
    (void)handle;
    return 0;
}
