/*
 * libFuzzer target for the report normalizer (src/normalize*.c): the input is
 * a small bytecode that builds a decoded body (nested tables, strings, numbers,
 * booleans, a null) in a fresh Lua 5.4 state; then core.normalize_report,
 * core.normalize_date and core.normalize_number run on it, and the state is
 * closed, so LeakSanitizer sees anything the normalizer failed to free.
 *
 * Bytecode, one opcode byte then its operands (missing bytes read as 0):
 *   0 new table              1 n bytes: string of n (< 256) bytes
 *   2 i: vocabulary string i 3 8 bytes: integer      4 8 bytes: double
 *   5 b: small integer b-128 6 b: boolean b&1        7 the JSON null (lightuserdata)
 *   8 t[k] = v (pops k, v)   9 t[#t+1] = v (pops v)  10 pop
 *   11 d: copy of depth d    12 i: t[vocabulary i] = v (pops v)
 * where t is the table nearest the top below the operands. The header byte
 * picks utc_offset_hours (nil, a valid quarter hour or a bad value) and an
 * allocation budget: with one, the normalizer may hit a memory error, which
 * must unwind cleanly. The first value built is the body.
 *
 * Invariants: normalize_report returns a table (or nil and the message for a
 * body that is not a table) and raises only for a bad offset or a memory
 * error; every date it gives is YYYY-MM-DD; raw is the body itself; every
 * record list is a sequence of tables.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "compat.h"
#include "core.h"
#include "fuzz_common.h"

#define MAX_VALUES 64
#define MAX_OPS 4096

static const char *const vocabulary[] = {
    "data", "detail", "resultCode", "resultMsg", "description", "vin", "brand", "manufacturer",
    "seriesName", "modelName", "makeDate", "transmissionType", "displacement", "effluentStandard",
    "carFireFlag", "carWaterFlag", "carComponentRecordsFlag", "carConstructRecordsFlag",
    "carOutsideRecordsFlag", "mileageIsNormalFlag", "mileageEstimate", "mileageEveryYear",
    "mainTainTimes", "lastMainTainTime", "lastRepairTime", "normalRepairRecords",
    "componentAnalyzeRepairRecords", "outsideAnalyzeRepairRecords", "constructAnalyzeRepairRecords",
    "content", "repairDate", "mainTainDate", "materal", "material", "mileage", "type",
    "2016-06-23", "2016/6/3", "2016-06-23 10:11:12", "2016-02-30", "1381161600000", "-62135596800000",
    "253402303600000", "0001381161600000", "29", " 1.9 ", "-.5", "9007199254740993", "1e5", "0x10",
    "a; b；c; ", "oil:4; 机油：2; x:y", "钣金喷漆", "常规保养", "更换机油机滤", "", " ",
    "\xef\xbc", "\xef\xbc\x9b", "\xef\xbc\x9a", "99999999999999999999",
};
#define VOCABULARY_SIZE (sizeof vocabulary / sizeof vocabulary[0])

static const double offsets[] = {8, 0, -12, 14, 5.75, -3.5, 14.25, 25, 0.1, -12.25};
#define VALID_OFFSETS 6 /* offsets[0..6) are valid, the rest must raise */

typedef struct {
    const uint8_t *p;
    size_t n;
} reader;

static unsigned next_byte(reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static void next_bytes(reader *r, void *out, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        ((unsigned char *)out)[i] = (unsigned char)next_byte(r);
}

/* Allocation budget: 0 is unlimited; else the count of allocations left. */
typedef struct {
    long budget;
    int limited;
} heap;

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    heap *h = ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (h->limited && nsize > osize) {
        if (h->budget <= 0)
            return NULL;
        h->budget--;
    }
    return realloc(ptr, nsize);
}

/* The table nearest the top at or below index top, or 0. */
static int table_below(lua_State *L, int base, int top)
{
    int i;
    for (i = top; i > base; i--)
        if (lua_type(L, i) == LUA_TTABLE)
            return i;
    return 0;
}

/* Runs the bytecode; leaves the body (or nil) on the stack top. */
static int build(lua_State *L)
{
    reader *r = lua_touserdata(L, 1);
    int base = lua_gettop(L), ops = 0;
    luaL_checkstack(L, MAX_VALUES + 8, "fuzz values");
    while (r->n > 0 && ops++ < MAX_OPS) {
        int top = lua_gettop(L), count = top - base, t;
        unsigned op = next_byte(r) % 13;
        if ((op <= 7 || op == 11) && count >= MAX_VALUES) /* the stack space checked above */
            op = 10;
        switch (op) {
        case 0:
            lua_newtable(L);
            break;
        case 1: {
            unsigned char s[255];
            size_t len = next_byte(r);
            if (len > r->n)
                len = r->n;
            next_bytes(r, s, len);
            lua_pushlstring(L, (const char *)s, len);
            break;
        }
        case 2:
            lua_pushstring(L, vocabulary[next_byte(r) % VOCABULARY_SIZE]);
            break;
        case 3: {
            int64_t i;
            next_bytes(r, &i, sizeof i);
            lua_pushinteger(L, (lua_Integer)i);
            break;
        }
        case 4: {
            double f;
            next_bytes(r, &f, sizeof f);
            lua_pushnumber(L, f);
            break;
        }
        case 5:
            lua_pushinteger(L, (lua_Integer)next_byte(r) - 128);
            break;
        case 6:
            lua_pushboolean(L, (int)(next_byte(r) & 1));
            break;
        case 7:
            lua_pushlightuserdata(L, NULL);
            break;
        case 8: /* t[k] = v */
            if (count >= 3 && (t = table_below(L, base, top - 2)) != 0 && !lua_isnil(L, top - 1) &&
                !(lua_type(L, top - 1) == LUA_TNUMBER && isnan(lua_tonumber(L, top - 1))))
                lua_rawset(L, t);
            else if (count >= 2)
                lua_pop(L, 2);
            break;
        case 9: /* t[#t+1] = v */
            if (count >= 2 && (t = table_below(L, base, top - 1)) != 0)
                lua_rawseti(L, t, (lua_Integer)lua_rawlen(L, t) + 1);
            else if (count >= 1)
                lua_pop(L, 1);
            break;
        case 10:
            if (count > 1)
                lua_pop(L, 1);
            break;
        case 11: {
            unsigned d = next_byte(r);
            if (count > 0)
                lua_pushvalue(L, top - (int)(d % (unsigned)count));
            break;
        }
        default: { /* 12: t[vocabulary i] = v */
            unsigned i = next_byte(r);
            if (count >= 2 && (t = table_below(L, base, top - 1)) != 0) {
                lua_pushstring(L, vocabulary[i % VOCABULARY_SIZE]);
                lua_insert(L, -2);
                lua_rawset(L, t);
            }
            break;
        }
        }
    }
    lua_settop(L, base + 1); /* the first value built, or nil */
    return 1;
}

static void check_date(lua_State *L, int idx)
{
    size_t len;
    const char *s;
    if (lua_isnil(L, idx))
        return;
    CHECK(lua_type(L, idx) == LUA_TSTRING);
    s = lua_tolstring(L, idx, &len);
    CHECK(len == 10 && s[4] == '-' && s[7] == '-');
}

static void check_records(lua_State *L, int report, const char *name)
{
    lua_Integer i, n;
    lua_getfield(L, report, name);
    CHECK(lua_type(L, -1) == LUA_TTABLE);
    n = (lua_Integer)lua_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        CHECK(lua_type(L, -1) == LUA_TTABLE);
        lua_getfield(L, -1, "date");
        check_date(L, -1);
        lua_pop(L, 2);
    }
    lua_pushnil(L);
    for (i = 0; lua_next(L, -2) != 0; i++)
        lua_pop(L, 1);
    CHECK(i == n); /* nothing but the sequence */
    lua_pop(L, 1);
}

/* normalize_report(body, "ready", "ORDER", offset) and the checks. */
static int normalize(lua_State *L)
{
    int report;
    lua_getfield(L, 2, "normalize_report");
    lua_pushvalue(L, 1);
    lua_pushliteral(L, "ready");
    lua_pushliteral(L, "ORDER");
    lua_pushvalue(L, 3);
    lua_call(L, 4, 2);
    if (lua_type(L, 1) != LUA_TTABLE) {
        CHECK(lua_isnil(L, -2) && lua_type(L, -1) == LUA_TSTRING);
        return 0;
    }
    lua_pop(L, 1);
    report = lua_gettop(L);
    CHECK(lua_type(L, report) == LUA_TTABLE);
    lua_getfield(L, report, "raw");
    CHECK(lua_rawequal(L, -1, 1));
    lua_getfield(L, report, "last_maintenance_date");
    check_date(L, -1);
    lua_getfield(L, report, "last_repair_date");
    check_date(L, -1);
    lua_pop(L, 3);
    check_records(L, report, "records");
    check_records(L, report, "component_records");
    check_records(L, report, "exterior_records");
    check_records(L, report, "structural_records");
    /* The scalar functions on the body's own fields. */
    lua_getfield(L, 2, "normalize_date");
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 3);
    lua_call(L, 2, 1);
    check_date(L, -1);
    lua_getfield(L, 2, "normalize_number");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    CHECK(lua_isnil(L, -1));
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    heap h = {0, 0};
    reader r = {data, size};
    unsigned header = next_byte(&r), pick = header % 16, status;
    int valid_offset = 1;
    lua_State *L = lua_newstate(limited_alloc, &h);
    CHECK(L != NULL);
    lua_pushcfunction(L, build);
    lua_pushlightuserdata(L, &r);
    CHECK(lua_pcall(L, 1, 1, 0) == LUA_OK); /* body at 1 */
    lua_newtable(L);
    mr_normalize_register(L); /* module at 2 */
    if (pick < sizeof offsets / sizeof offsets[0]) {
        lua_pushnumber(L, offsets[pick]);
        valid_offset = pick < VALID_OFFSETS;
    } else {
        lua_pushnil(L); /* offset at 3 */
    }
    if (header & 0x80) { /* a budget of 0..127 allocations */
        h.limited = 1;
        h.budget = (long)(header & 0x7f);
    }
    lua_pushcfunction(L, normalize);
    lua_insert(L, 1);
    status = (unsigned)lua_pcall(L, 3, 0, 0);
    if (status != LUA_OK) {
        CHECK(status == LUA_ERRMEM || !valid_offset);
        if (status != LUA_ERRMEM) {
            const char *msg = lua_tostring(L, -1);
            CHECK(msg != NULL && strncmp(msg, "utc_offset_hours must be", 24) == 0);
        }
    } else {
        CHECK(valid_offset);
    }
    h.limited = 0;
    lua_close(L);
    return 0;
}
