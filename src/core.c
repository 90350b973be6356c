/* luaopen_maintenance_report_core: the module entry. */
#include <pthread.h>

#include <curl/curl.h>
#include <openssl/opensslv.h>

#include "compat.h"
#include "core.h"

/* curl_global_init is not thread-safe in every libcurl; pthread_once makes it so. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void init_curl(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int luaopen_maintenance_report_core(lua_State *L);

int luaopen_maintenance_report_core(lua_State *L)
{
    curl_version_info_data *info;
    if (pthread_once(&curl_once, init_curl) != 0 || curl_init_result != CURLE_OK)
        return luaL_error(L, "curl_global_init failed");
    lua_newtable(L);
    mr_sign_register(L);
    mr_session_register(L);
    mr_json_register(L);
    mr_os_register(L);
    mr_normalize_register(L);
    mr_signals_register(L);
    info = curl_version_info(CURLVERSION_NOW);
    lua_pushstring(L, info->version);
    lua_setfield(L, -2, "curl_version");
    lua_pushstring(L, info->ssl_version ? info->ssl_version : "none");
    lua_setfield(L, -2, "ssl_version");
    lua_pushliteral(L, OPENSSL_VERSION_TEXT);
    lua_setfield(L, -2, "openssl_version");
    return 1;
}
