/* The report walk (docs/normalize.md): core.normalize_report turns the
 * cjson-decoded vendor body into the normalized report. Numbers are read by
 * normalize_number.c, dates by normalize_date.c.
 *
 * Every read is a raw one (no metamethod runs), a value of the wrong type
 * counts as absent, and nothing raises but a memory error or a bad
 * utc_offset_hours. Where an output string equals an input string, the input
 * value itself is pushed: no copy and no new string. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "normalize.h"

#define UNDATED 0x7fffffff /* sort key of a record without a date: last */
#define SMALL_LIST 32      /* records built on the stack, list entries collected before the table */

/* Every table key and constant string, pushed once as upvalues of
 * normalize_report: reading one is a pushvalue, never a string lookup. */
#define MR_NORMALIZE_STRINGS(X)                                                                    \
    X(DATA, "data") X(DETAIL, "detail") X(RESULT_CODE, "resultCode") X(RESULT_MSG, "resultMsg")    \
    X(DESCRIPTION, "description") X(VIN, "vin") X(BRAND, "brand") X(MANUFACTURER, "manufacturer")  \
    X(SERIES_NAME, "seriesName") X(MODEL_NAME, "modelName") X(MAKE_DATE, "makeDate")               \
    X(TRANSMISSION_TYPE, "transmissionType") X(DISPLACEMENT, "displacement")                       \
    X(EFFLUENT_STANDARD, "effluentStandard") X(CAR_FIRE_FLAG, "carFireFlag")                       \
    X(CAR_WATER_FLAG, "carWaterFlag") X(CAR_COMPONENT_FLAG, "carComponentRecordsFlag")             \
    X(CAR_CONSTRUCT_FLAG, "carConstructRecordsFlag") X(CAR_OUTSIDE_FLAG, "carOutsideRecordsFlag")  \
    X(MILEAGE_NORMAL_FLAG, "mileageIsNormalFlag") X(MILEAGE_ESTIMATE_IN, "mileageEstimate")        \
    X(MILEAGE_EVERY_YEAR, "mileageEveryYear") X(MAINTAIN_TIMES, "mainTainTimes")                   \
    X(LAST_MAINTAIN_TIME, "lastMainTainTime") X(LAST_REPAIR_TIME, "lastRepairTime")                \
    X(NORMAL_RECORDS_IN, "normalRepairRecords") X(COMPONENT_RECORDS_IN, "componentAnalyzeRepairRecords") \
    X(OUTSIDE_RECORDS_IN, "outsideAnalyzeRepairRecords")                                           \
    X(CONSTRUCT_RECORDS_IN, "constructAnalyzeRepairRecords") X(CONTENT, "content")                 \
    X(REPAIR_DATE, "repairDate") X(MAINTAIN_DATE, "mainTainDate") X(MATERAL, "materal")            \
    X(MATERIAL, "material") X(MILEAGE, "mileage") X(TYPE, "type")                                  \
    X(STATUS, "status") X(ORDER_ID, "order_id") X(CODE, "code") X(MESSAGE, "message")              \
    X(VEHICLE, "vehicle") X(FLAGS, "flags") X(MILEAGE_ESTIMATE, "mileage_estimate")                \
    X(MILEAGE_PER_YEAR, "mileage_per_year") X(MAINTENANCE_PER_YEAR, "maintenance_per_year")        \
    X(LAST_MAINTENANCE_DATE, "last_maintenance_date") X(LAST_REPAIR_DATE, "last_repair_date")      \
    X(RECORDS, "records") X(COMPONENT_RECORDS, "component_records")                                \
    X(EXTERIOR_RECORDS, "exterior_records") X(STRUCTURAL_RECORDS, "structural_records")            \
    X(RAW, "raw") X(SERIES, "series") X(MODEL, "model") X(YEAR, "year")                            \
    X(TRANSMISSION, "transmission") X(EMISSION_STANDARD, "emission_standard") X(FIRE, "fire")      \
    X(FLOOD, "flood") X(MAJOR_COMPONENT, "major_component") X(STRUCTURAL, "structural")            \
    X(EXTERIOR, "exterior") X(MILEAGE_NORMAL, "mileage_normal") X(DATE, "date") X(ITEMS, "items")  \
    X(MATERIALS, "materials") X(CATEGORY, "category") X(NAME, "name") X(QUANTITY, "quantity")      \
    X(BODYWORK, "bodywork") X(MAINTENANCE, "maintenance") X(REPAIR, "repair")

enum {
#define MR_KEY_ENUM(id, text) K_##id,
    MR_NORMALIZE_STRINGS(MR_KEY_ENUM)
#undef MR_KEY_ENUM
    K_COUNT
};

static const char *const key_text[K_COUNT] = {
#define MR_KEY_TEXT(id, text) text,
    MR_NORMALIZE_STRINGS(MR_KEY_TEXT)
#undef MR_KEY_TEXT
};

#define KEY(k) lua_upvalueindex((k) + 1)

/* Category words, UTF-8: 钣金 喷漆 (bodywork), 保养 机油 机滤 (maintenance). */
static const char bodywork_words[2][7] = {"\xe9\x92\xa3\xe9\x87\x91", "\xe5\x96\xb7\xe6\xbc\x86"};
static const char maintenance_words[3][7] = {"\xe4\xbf\x9d\xe5\x85\xbb", "\xe6\x9c\xba\xe6\xb2\xb9",
                                             "\xe6\x9c\xba\xe6\xbb\xa4"};
#define FOUND_BODYWORK 1
#define FOUND_MAINTENANCE 2


/* ------------------------------------------------------------------------
 * Fields of the vendor's tables
 * ------------------------------------------------------------------------ */

/* Pushes rawget(t, key) and returns its absolute index. */
static int get(lua_State *L, int t, int k)
{
    lua_pushvalue(L, KEY(k));
    lua_rawget(L, t);
    return lua_gettop(L);
}

/* A table without [1] (cjson gives arrays and objects both as tables). */
static int is_object(lua_State *L, int idx)
{
    int yes;
    if (lua_type(L, idx) != LUA_TTABLE)
        return 0;
    lua_rawgeti(L, idx, 1);
    yes = lua_isnil(L, -1);
    lua_pop(L, 1);
    return yes;
}

/* Each reader leaves exactly one value on the stack and returns 1, or leaves
 * nothing and returns 0. */
typedef int (*mr_reader)(lua_State *L, int t, int k, long long offset_ms);

/* text(t[k]): trimmed, non-empty. */
static int read_text(lua_State *L, int t, int k, long long offset_ms)
{
    int v = get(L, t, k);
    size_t len, b, e;
    const unsigned char *s;
    (void)offset_ms;
    if (lua_type(L, v) == LUA_TSTRING) {
        s = (const unsigned char *)lua_tolstring(L, v, &len);
        mr_trim(s, len, &b, &e);
        if (b == 0 && e == len && len > 0)
            return 1; /* the value itself */
        if (e > b) {
            lua_pushlstring(L, (const char *)s + b, e - b);
            lua_replace(L, v);
            return 1;
        }
    }
    lua_pop(L, 1);
    return 0;
}

static int read_number(lua_State *L, int t, int k, long long offset_ms)
{
    int v = get(L, t, k);
    (void)offset_ms;
    if (mr_push_number(L, v)) {
        lua_replace(L, v);
        return 1;
    }
    lua_pop(L, 1);
    return 0;
}

/* A whole year 1000..9999. */
static int read_year(lua_State *L, int t, int k, long long offset_ms)
{
    if (!read_number(L, t, k, offset_ms))
        return 0;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, -1)) {
        lua_Integer n = lua_tointeger(L, -1);
        if (n >= 1000 && n <= 9999)
            return 1;
    } else
#endif
    {
        lua_Number n = lua_tonumber(L, -1);
        if (mr_is_integral(n) && n >= 1000 && n <= 9999)
            return 1;
    }
    lua_pop(L, 1);
    return 0;
}

/* true for 1, false for 0. */
static int read_flag(lua_State *L, int t, int k, long long offset_ms)
{
    lua_Number n;
    if (!read_number(L, t, k, offset_ms))
        return 0;
    n = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (n != 1 && n != 0)
        return 0;
    lua_pushboolean(L, n == 1);
    return 1;
}

static int read_date(lua_State *L, int t, int k, long long offset_ms)
{
    int v = get(L, t, k), key;
    if (mr_push_date(L, v, offset_ms, &key)) {
        lua_replace(L, v);
        return 1;
    }
    lua_pop(L, 1);
    return 0;
}

/* out[to] = read(src[from]) when the reader gives a value; src 0 is absent. */
static void set_from(lua_State *L, int out, int to, mr_reader read, int src, int from, long long offset_ms)
{
    if (src == 0)
        return;
    lua_pushvalue(L, KEY(to));
    if (read(L, src, from, offset_ms))
        lua_rawset(L, out);
    else
        lua_pop(L, 1);
}

/* ------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------ */

/* Splits "a; b；c" into its trimmed, non-empty runs between ';' and '；'
 * (U+FF1B) separators, with memchr: most of the text is other CJK bytes. */
typedef struct {
    const unsigned char *s;
    size_t len, pos;
    size_t semi, wide; /* the next ';' and '；' at or after pos, or len */
} mr_splitter;

static size_t find_semicolon(const unsigned char *s, size_t from, size_t len)
{
    const unsigned char *p = memchr(s + from, ';', len - from);
    return p != NULL ? (size_t)(p - s) : len;
}

static size_t find_wide_semicolon(const unsigned char *s, size_t from, size_t len)
{
    while (from + 3 <= len) {
        const unsigned char *p = memchr(s + from, 0xef, len - from - 2);
        if (p == NULL)
            break;
        from = (size_t)(p - s);
        if (s[from + 1] == 0xbc && s[from + 2] == 0x9b)
            return from;
        from++;
    }
    return len;
}

static void split_start(mr_splitter *it, const unsigned char *s, size_t len)
{
    it->s = s;
    it->len = len;
    it->pos = 0;
    it->semi = find_semicolon(s, 0, len);
    it->wide = find_wide_semicolon(s, 0, len);
}

/* The next run: s[*b..*e). Returns 0 at the end. */
static int split_next(mr_splitter *it, size_t *b, size_t *e)
{
    const unsigned char *s = it->s;
    while (it->pos < it->len) {
        size_t start = it->pos, stop;
        if (it->semi < start)
            it->semi = find_semicolon(s, start, it->len);
        if (it->wide < start)
            it->wide = find_wide_semicolon(s, start, it->len);
        if (it->semi < it->wide) {
            stop = it->semi;
            it->pos = stop + 1;
        } else if (it->wide < it->len) {
            stop = it->wide;
            it->pos = stop + 3;
        } else {
            stop = it->pos = it->len;
        }
        while (start < stop && mr_is_space(s[start]))
            start++;
        while (stop > start && mr_is_space(s[stop - 1]))
            stop--;
        if (stop > start) {
            *b = start;
            *e = stop;
            return 1;
        }
    }
    return 0;
}

/* Adds the category words s[0..n) mentions to found: one pass over the bytes
 * (a word may start anywhere, as string.find would find it). */
static int mentions(const unsigned char *s, size_t n, int found)
{
    size_t i;
    if ((found & FOUND_BODYWORK) || n < 6)
        return found;
    for (i = 0; i <= n - 6; i++) {
        const unsigned char *p = s + i;
        if (p[0] < 0xe4 || p[0] > 0xe9) /* no word starts here: most bytes */
            continue;
        switch (p[0]) {
        case 0xe9:
            if (memcmp(p, bodywork_words[0], 6) == 0)
                return found | FOUND_BODYWORK;
            break;
        case 0xe5:
            if (memcmp(p, bodywork_words[1], 6) == 0)
                return found | FOUND_BODYWORK;
            break;
        case 0xe4:
            if (memcmp(p, maintenance_words[0], 6) == 0)
                found |= FOUND_MAINTENANCE;
            break;
        case 0xe6:
            if (memcmp(p, maintenance_words[1], 6) == 0 || memcmp(p, maintenance_words[2], 6) == 0)
                found |= FOUND_MAINTENANCE;
            break;
        default:
            break;
        }
    }
    return found;
}

/* Pushes s[b..e) of the string at idx (len bytes): the value itself when whole. */
static void push_part(lua_State *L, int idx, const unsigned char *s, size_t len, size_t b, size_t e)
{
    if (b == 0 && e == len)
        lua_pushvalue(L, idx);
    else
        lua_pushlstring(L, (const char *)s + b, e - b);
}

/* The runs of a packed list, collected before its table is made so that the
 * table has its final size at once: up to SMALL_LIST, else in batches. */
typedef struct {
    mr_splitter it;
    size_t n, b[SMALL_LIST], e[SMALL_LIST];
    int more;
} mr_runs;

static void runs_fill(mr_runs *r)
{
    r->n = 0;
    while (r->n < SMALL_LIST && split_next(&r->it, &r->b[r->n], &r->e[r->n]))
        r->n++;
    r->more = r->n == SMALL_LIST;
}

/* {name=, quantity=} from the entry s[b..e): split at the last ':' or '：'
 * (U+FF1A); the whole entry as the name unless the quantity is a number and
 * the name is not empty. */
static void push_material(lua_State *L, int v, const unsigned char *s, size_t len, size_t b, size_t e)
{
    size_t at = 0, width = 0, j;
    lua_createtable(L, 0, 2);
    for (j = e; j > b; j--) {
        size_t c = j - 1;
        if (s[c] == ':') {
            at = c;
            width = 1;
            break;
        }
        if (s[c] == 0xef && c + 3 <= e && s[c + 1] == 0xbc && s[c + 2] == 0x9a) {
            at = c;
            width = 3;
            break;
        }
    }
    if (width != 0) {
        size_t nb, ne;
        mr_trim(s + b, at - b, &nb, &ne);
        if (ne > nb) {
            lua_pushvalue(L, KEY(K_QUANTITY));
            if (mr_push_number_text(L, (const char *)s + at + width, e - at - width, 0)) {
                lua_rawset(L, -3);
                lua_pushvalue(L, KEY(K_NAME));
                lua_pushlstring(L, (const char *)s + b + nb, ne - nb);
                lua_rawset(L, -3);
                return;
            }
            lua_pop(L, 1);
        }
    }
    lua_pushvalue(L, KEY(K_NAME));
    push_part(L, v, s, len, b, e);
    lua_rawset(L, -3);
}

/* The entries of the packed list string at v ({} for anything else): items,
 * whose category words are added to *found, or materials when found is NULL. */
static void push_packed_list(lua_State *L, int v, int *found)
{
    mr_runs r;
    size_t len, i;
    const unsigned char *s;
    int list, n = 0;
    if (lua_type(L, v) != LUA_TSTRING) {
        lua_newtable(L);
        return;
    }
    s = (const unsigned char *)lua_tolstring(L, v, &len);
    split_start(&r.it, s, len);
    runs_fill(&r);
    lua_createtable(L, (int)r.n, 0);
    list = lua_gettop(L);
    for (;;) {
        for (i = 0; i < r.n; i++) {
            if (found != NULL) {
                *found = mentions(s + r.b[i], r.e[i] - r.b[i], *found);
                push_part(L, v, s, len, r.b[i], r.e[i]);
            } else {
                push_material(L, v, s, len, r.b[i], r.e[i]);
            }
            lua_rawseti(L, list, ++n);
        }
        if (!r.more)
            break;
        runs_fill(&r);
    }
}

/* Pushes the normalized record of the table at raw; returns its date's sort key. */
static int push_record(lua_State *L, int raw, long long offset_ms)
{
    int rec, v, key = UNDATED, found = 0;
    lua_createtable(L, 0, 6);
    rec = lua_gettop(L);

    lua_pushvalue(L, KEY(K_DATE));
    v = get(L, raw, K_REPAIR_DATE);
    if (!mr_push_date(L, v, offset_ms, &key)) {
        lua_pop(L, 1);
        v = get(L, raw, K_MAINTAIN_DATE);
        if (!mr_push_date(L, v, offset_ms, &key))
            lua_pushnil(L);
    }
    lua_remove(L, v); /* key, date */
    if (key != UNDATED)
        lua_rawset(L, rec);
    else
        lua_pop(L, 2);

    set_from(L, rec, K_MILEAGE, read_number, raw, K_MILEAGE, offset_ms);

    lua_pushvalue(L, KEY(K_ITEMS));
    v = get(L, raw, K_CONTENT);
    push_packed_list(L, v, &found);
    lua_remove(L, v);
    lua_rawset(L, rec);

    lua_pushvalue(L, KEY(K_MATERIALS));
    v = get(L, raw, K_MATERAL); /* sic, the vendor's spelling */
    if (lua_type(L, v) != LUA_TSTRING) {
        lua_pop(L, 1);
        v = get(L, raw, K_MATERIAL);
    }
    push_packed_list(L, v, NULL);
    lua_remove(L, v);
    lua_rawset(L, rec);

    lua_pushvalue(L, KEY(K_TYPE));
    if (read_text(L, raw, K_TYPE, offset_ms)) {
        size_t len;
        const unsigned char *s = (const unsigned char *)lua_tolstring(L, -1, &len);
        found = mentions(s, len, found);
        lua_rawset(L, rec);
    } else {
        lua_pop(L, 1);
    }

    lua_pushvalue(L, KEY(K_CATEGORY));
    lua_pushvalue(L, KEY((found & FOUND_BODYWORK) ? K_BODYWORK
                         : (found & FOUND_MAINTENANCE) ? K_MAINTENANCE : K_REPAIR));
    lua_rawset(L, rec);
    return key;
}

/* A key of the record list: lists must have only whole-number keys >= 1. */
typedef struct {
#if LUA_VERSION_NUM >= 503
    int is_float; /* a float key: on 5.4 only one >= 2^63, past every integer */
    lua_Integer i;
#endif
    lua_Number f;
} mr_list_key;

#if LUA_VERSION_NUM >= 503
/* An integer key against a float key (whole, >= 1). */
static int compare_int_float(lua_Integer i, lua_Number f)
{
    lua_Integer fi;
    if (f >= 9223372036854775808.0) /* 2^63: past every integer */
        return -1;
    fi = (lua_Integer)f;
    return i < fi ? -1 : i > fi;
}
#endif

static int compare_list_keys(const void *pa, const void *pb)
{
    const mr_list_key *a = pa, *b = pb;
#if LUA_VERSION_NUM >= 503
    if (!a->is_float && !b->is_float)
        return a->i < b->i ? -1 : a->i > b->i;
    if (!a->is_float)
        return compare_int_float(a->i, b->f);
    if (!b->is_float)
        return -compare_int_float(b->i, a->f);
#endif
    return a->f < b->f ? -1 : a->f > b->f;
}

/* Reads a key on the stack top; returns 0 unless it is a whole number >= 1. */
static int read_list_key(lua_State *L, mr_list_key *key)
{
    if (lua_type(L, -1) != LUA_TNUMBER)
        return 0;
#if LUA_VERSION_NUM >= 503
    key->is_float = !lua_isinteger(L, -1);
    if (!key->is_float) {
        key->i = lua_tointeger(L, -1);
        key->f = 0;
        return key->i >= 1;
    }
    key->i = 0;
#endif
    key->f = lua_tonumber(L, -1);
    return key->f >= 1 && isfinite(key->f) && mr_is_integral(key->f);
}

/* array_items: counts the keys of the table at t into *count. Returns -1 when
 * one is not a whole number >= 1 (the list is then empty), 0 when the keys are
 * exactly 1..count, 1 when they are other whole numbers. */
static int scan_list_keys(lua_State *L, int t, size_t *count)
{
    mr_list_key key;
    size_t n = 0;
    int sparse = 0;
#if LUA_VERSION_NUM >= 503
    lua_Integer max = 0;
#else
    lua_Number max = 0;
#endif
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        if (!read_list_key(L, &key)) {
            lua_pop(L, 1);
            return -1;
        }
        n++;
#if LUA_VERSION_NUM >= 503
        if (key.is_float)
            sparse = 1;
        else if (key.i > max)
            max = key.i;
#else
        if (key.f > max)
            max = key.f;
#endif
    }
    *count = n;
    /* n distinct whole keys >= 1 are 1..n exactly when the largest is n. */
#if LUA_VERSION_NUM >= 503
    return (sparse || (lua_Unsigned)max != (lua_Unsigned)n) ? 1 : 0;
#else
    (void)sparse;
    return max != (lua_Number)n ? 1 : 0;
#endif
}

/* Pushes value[key] for a sparse list key. */
static void push_list_item(lua_State *L, int t, const mr_list_key *key)
{
#if LUA_VERSION_NUM >= 503
    if (!key->is_float) {
        lua_rawgeti(L, t, key->i);
        return;
    }
#endif
    lua_pushnumber(L, key->f);
    lua_rawget(L, t);
}

static int compare_sort_keys(const void *pa, const void *pb)
{
    long long a = *(const long long *)pa, b = *(const long long *)pb;
    return a < b ? -1 : a > b;
}

/* records(value): the normalized records of the list at value, dated ones by
 * date, ties and undated ones (last) in list order. Short lists are built on
 * the stack and copied once, in order, into their table. */
static void push_records(lua_State *L, int value, long long offset_ms)
{
    long long small_order[SMALL_LIST], *order = small_order;
    mr_list_key *keys = NULL;
    size_t n = 0, k = 0, i;
    int base = lua_gettop(L), list = 0, first, sorted = 1, on_stack, kind;

    kind = lua_type(L, value) == LUA_TTABLE ? scan_list_keys(L, value, &n) : -1;
    if (kind < 0 || n == 0 || n > (size_t)INT_MAX / 2) {
        lua_newtable(L);
        return;
    }
    if (kind == 1) { /* not 1..n: the keys in ascending order */
        size_t j = 0;
        keys = lua_newuserdata(L, n * sizeof *keys);
        lua_pushnil(L);
        while (lua_next(L, value) != 0) {
            lua_pop(L, 1);
            read_list_key(L, &keys[j++]);
        }
        qsort(keys, n, sizeof *keys, compare_list_keys);
    }
    on_stack = n <= SMALL_LIST && lua_checkstack(L, (int)n + 32);
    if (!on_stack) {
        if (n > SMALL_LIST)
            order = lua_newuserdata(L, n * sizeof *order);
        lua_createtable(L, (int)n, 0);
        list = lua_gettop(L);
    }
    first = lua_gettop(L) + 1;
    for (i = 0; i < n; i++) {
        int raw;
        if (keys != NULL)
            push_list_item(L, value, &keys[i]);
        else
            lua_rawgeti(L, value, (int)i + 1);
        raw = lua_gettop(L);
        if (lua_type(L, raw) != LUA_TTABLE) {
            lua_pop(L, 1);
            continue;
        }
        order[k] = (long long)push_record(L, raw, offset_ms) << 32 | (long long)k;
        if (k > 0 && order[k] < order[k - 1])
            sorted = 0;
        k++;
        if (on_stack) {
            lua_replace(L, raw); /* the record takes the raw record's slot */
        } else {
            lua_rawseti(L, list, (int)k);
            lua_pop(L, 1);
        }
    }
    if (!sorted)
        qsort(order, k, sizeof *order, compare_sort_keys);
    if (on_stack || !sorted) {
        lua_createtable(L, (int)k, 0);
        for (i = 0; i < k; i++) {
            int at = (int)(order[i] & 0x7fffffff);
            if (on_stack)
                lua_pushvalue(L, first + at);
            else
                lua_rawgeti(L, list, at + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
    }
    /* Leave only the result above base. */
    if (lua_gettop(L) > base + 1) {
        lua_replace(L, base + 1);
        lua_settop(L, base + 1);
    }
}

static void set_records(lua_State *L, int out, int to, int detail, int from, long long offset_ms)
{
    int v;
    lua_pushvalue(L, KEY(to));
    if (detail != 0) {
        v = get(L, detail, from);
        push_records(L, v, offset_ms);
        lua_remove(L, v);
    } else {
        lua_newtable(L);
    }
    lua_rawset(L, out);
}

/* ------------------------------------------------------------------------
 * Report
 * ------------------------------------------------------------------------ */

static const struct {
    unsigned char to, from;
    mr_reader read;
} vehicle_fields[] = {
    {K_VIN, K_VIN, read_text},
    {K_BRAND, K_BRAND, read_text},
    {K_MANUFACTURER, K_MANUFACTURER, read_text},
    {K_SERIES, K_SERIES_NAME, read_text},
    {K_MODEL, K_MODEL_NAME, read_text},
    {K_YEAR, K_MAKE_DATE, read_year},
    {K_TRANSMISSION, K_TRANSMISSION_TYPE, read_text},
    {K_DISPLACEMENT, K_DISPLACEMENT, read_text},
    {K_EMISSION_STANDARD, K_EFFLUENT_STANDARD, read_text},
};

static const unsigned char flag_fields[][2] = {
    {K_FIRE, K_CAR_FIRE_FLAG},
    {K_FLOOD, K_CAR_WATER_FLAG},
    {K_MAJOR_COMPONENT, K_CAR_COMPONENT_FLAG},
    {K_STRUCTURAL, K_CAR_CONSTRUCT_FLAG},
    {K_EXTERIOR, K_CAR_OUTSIDE_FLAG},
    {K_MILEAGE_NORMAL, K_MILEAGE_NORMAL_FLAG},
};

/* normalize_report(decoded, status, order_id, utc_offset_hours)
 *   → report | nil, "report body is not an object"; a bad offset raises,
 *   whatever decoded is, before anything is built. */
static int l_normalize_report(lua_State *L)
{
    int data = 0, detail = 0, out, sub;
    size_t i;
    long long offset_ms;
    lua_settop(L, 4);
    offset_ms = mr_utc_offset_ms(L, 4);
    if (lua_type(L, 1) != LUA_TTABLE) {
        lua_pushnil(L);
        lua_pushliteral(L, "report body is not an object");
        return 2;
    }
    luaL_checkstack(L, 32, "normalize_report");

    data = get(L, 1, K_DATA); /* 5 */
    if (is_object(L, data)) {
        detail = get(L, data, K_DETAIL); /* 6 */
        if (!is_object(L, detail))
            detail = 0;
    } else {
        data = 0;
    }

    lua_createtable(L, 0, 16);
    out = lua_gettop(L);
    if (!lua_isnil(L, 2)) {
        lua_pushvalue(L, KEY(K_STATUS));
        lua_pushvalue(L, 2);
        lua_rawset(L, out);
    }
    if (lua_type(L, 3) == LUA_TSTRING) {
        lua_pushvalue(L, KEY(K_ORDER_ID));
        lua_pushvalue(L, 3);
        lua_rawset(L, out);
    }
    set_from(L, out, K_CODE, read_number, detail, K_RESULT_CODE, offset_ms);
    lua_pushvalue(L, KEY(K_MESSAGE));
    if ((detail != 0 && read_text(L, detail, K_RESULT_MSG, offset_ms)) ||
        (data != 0 && read_text(L, data, K_DESCRIPTION, offset_ms)))
        lua_rawset(L, out);
    else
        lua_pop(L, 1);

    lua_pushvalue(L, KEY(K_VEHICLE));
    lua_createtable(L, 0, 9);
    sub = lua_gettop(L);
    for (i = 0; i < sizeof vehicle_fields / sizeof vehicle_fields[0]; i++)
        set_from(L, sub, vehicle_fields[i].to, vehicle_fields[i].read, detail, vehicle_fields[i].from, offset_ms);
    lua_rawset(L, out);

    lua_pushvalue(L, KEY(K_FLAGS));
    lua_createtable(L, 0, 6);
    sub = lua_gettop(L);
    for (i = 0; i < sizeof flag_fields / sizeof flag_fields[0]; i++)
        set_from(L, sub, flag_fields[i][0], read_flag, detail, flag_fields[i][1], offset_ms);
    lua_rawset(L, out);

    set_from(L, out, K_MILEAGE_ESTIMATE, read_number, detail, K_MILEAGE_ESTIMATE_IN, offset_ms);
    set_from(L, out, K_MILEAGE_PER_YEAR, read_number, detail, K_MILEAGE_EVERY_YEAR, offset_ms);
    set_from(L, out, K_MAINTENANCE_PER_YEAR, read_number, detail, K_MAINTAIN_TIMES, offset_ms);
    set_from(L, out, K_LAST_MAINTENANCE_DATE, read_date, detail, K_LAST_MAINTAIN_TIME, offset_ms);
    set_from(L, out, K_LAST_REPAIR_DATE, read_date, detail, K_LAST_REPAIR_TIME, offset_ms);
    set_records(L, out, K_RECORDS, detail, K_NORMAL_RECORDS_IN, offset_ms);
    set_records(L, out, K_COMPONENT_RECORDS, detail, K_COMPONENT_RECORDS_IN, offset_ms);
    set_records(L, out, K_EXTERIOR_RECORDS, detail, K_OUTSIDE_RECORDS_IN, offset_ms);
    set_records(L, out, K_STRUCTURAL_RECORDS, detail, K_CONSTRUCT_RECORDS_IN, offset_ms);

    lua_pushvalue(L, KEY(K_RAW));
    lua_pushvalue(L, 1);
    lua_rawset(L, out);
    return 1;
}

void mr_normalize_register(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"normalize_date", mr_l_normalize_date},
        {"normalize_number", mr_l_normalize_number},
        {NULL, NULL},
    };
    int k;
    luaL_setfuncs(L, funcs, 0);
    luaL_checkstack(L, K_COUNT + 1, "normalize_report keys");
    for (k = 0; k < K_COUNT; k++)
        lua_pushstring(L, key_text[k]);
    lua_pushcclosure(L, l_normalize_report, K_COUNT);
    lua_setfield(L, -2, "normalize_report");
    mr_analysis_search_register(L);
}
