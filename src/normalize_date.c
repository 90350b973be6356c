/* normalize.date (docs/normalize.md, "Dates"): a civil date "YYYY-MM-DD" from
 * date text or from epoch milliseconds at a UTC offset, in exact integer
 * arithmetic (H. Hinnant's civil_from_days), never os.date: the host's time
 * zone has no effect. No libm: math.h only for isfinite. */
#include <math.h>

#include "normalize.h"

#define MS_PER_DAY 86400000LL
#define QUARTER_HOUR_MS 900000LL
/* |epoch ms| beyond 10^15 (about 31,700 years) is outside 0001..9999 at every
 * offset; refusing it first keeps all the arithmetic far from overflow. */
#define EPOCH_GUARD 1000000000000000LL

long long mr_utc_offset_ms(lua_State *L, int idx)
{
    const char *got;
    if (lua_isnoneornil(L, idx))
        return MR_DEFAULT_UTC_OFFSET_MS;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Number quarters = lua_tonumber(L, idx) * 4; /* exact for every value in range */
        if (quarters >= -48 && quarters <= 56 && mr_is_integral(quarters))
            return (long long)quarters * QUARTER_HOUR_MS;
        lua_pushvalue(L, idx);
        got = lua_tostring(L, -1); /* tostring's text, converted on the copy */
    } else {
        got = luaL_typename(L, idx);
    }
    return luaL_error(L, "utc_offset_hours must be a number from -12 to 14 in steps of 0.25, got %s", got);
}

static long long floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* math.floor for |q| < 2^63. */
static long long floor_small(lua_Number q)
{
    long long t = (long long)q;
    return (lua_Number)t > q ? t - 1 : t;
}

static int days_in_month(long long y, long long m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return days[m - 1];
}

static int valid_date(long long y, long long m, long long d)
{
    return y >= 1 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

/* Civil date from days since 1970-01-01. */
static void civil_from_days(long long days, long long *y, long long *m, long long *d)
{
    long long z = days + 719468;
    long long era = floor_div(z, 146097);
    long long doe = z - era * 146097;
    long long yoe = floor_div(doe - floor_div(doe, 1460) + floor_div(doe, 36524) - floor_div(doe, 146096), 365);
    long long doy = doe - (365 * yoe + floor_div(yoe, 4) - floor_div(yoe, 100));
    long long mp = floor_div(5 * doy + 2, 153);
    *d = doy - floor_div(153 * mp + 2, 5) + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

/* The civil date of the whole epoch ms (|ms| <= EPOCH_GUARD) at the offset;
 * returns 0 outside 0001-01-01..9999-12-31. */
static int date_from_epoch(long long ms, long long offset_ms, int *y, int *m, int *d)
{
    long long yy, mm, dd;
    civil_from_days(floor_div(ms + offset_ms, MS_PER_DAY), &yy, &mm, &dd);
    if (!valid_date(yy, mm, dd))
        return 0;
    *y = (int)yy;
    *m = (int)mm;
    *d = (int)dd;
    return 1;
}

/* Epoch ms from a number: finite, within the guard, floored to a whole ms. */
static int epoch_from_number(lua_State *L, int idx, long long *ms)
{
    lua_Number f;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        if (i < -EPOCH_GUARD || i > EPOCH_GUARD)
            return 0;
        *ms = (long long)i;
        return 1;
    }
#endif
    f = lua_tonumber(L, idx);
    if (!(f >= -(lua_Number)EPOCH_GUARD && f <= (lua_Number)EPOCH_GUARD)) /* NaN fails too */
        return 0;
    *ms = floor_small(f);
    return 1;
}

/* ^-?%d+$ */
static int is_epoch_text(const unsigned char *s, size_t n)
{
    size_t i = (n > 0 && s[0] == '-') ? 1 : 0, start = i;
    while (i < n && mr_is_digit(s[i]))
        i++;
    return i > start && i == n;
}

/* Epoch ms from text matching ^-?%d+$, exactly, however many leading zeros. */
static int epoch_from_text(const unsigned char *s, size_t n, long long *ms)
{
    size_t i = (s[0] == '-') ? 1 : 0, j;
    long long v = 0;
    while (i < n && s[i] == '0')
        i++;
    if (n - i > 16) /* 10^16 and above: past the guard */
        return 0;
    for (j = i; j < n; j++)
        v = v * 10 + (s[j] - '0');
    if (v > EPOCH_GUARD)
        return 0;
    *ms = s[0] == '-' ? -v : v;
    return 1;
}

/* "YYYY-MM-DD" or "YYYY/MM/DD" (one-digit month and day allowed), then
 * nothing or "T"/" " h[h]:mm and anything after: the Lua pattern
 * ^(%d%d%d%d)([-/])(%d%d?)%2(%d%d?)(.*)$ with the rest matching ^[T ]%d%d?:%d%d. */
static int date_from_text(const unsigned char *s, size_t n, int *y, int *m, int *d)
{
    size_t p;
    unsigned char sep;
    if (n < 8 || !mr_is_digit(s[0]) || !mr_is_digit(s[1]) || !mr_is_digit(s[2]) || !mr_is_digit(s[3]))
        return 0;
    sep = s[4];
    if ((sep != '-' && sep != '/') || !mr_is_digit(s[5]))
        return 0;
    if (mr_is_digit(s[6])) { /* %d%d? is greedy; backing off to one digit would leave a digit before %2 */
        if (s[7] != sep)
            return 0;
        *m = (s[5] - '0') * 10 + (s[6] - '0');
        p = 8;
    } else {
        if (s[6] != sep)
            return 0;
        *m = s[5] - '0';
        p = 7;
    }
    if (p >= n || !mr_is_digit(s[p]))
        return 0;
    if (p + 1 < n && mr_is_digit(s[p + 1])) {
        *d = (s[p] - '0') * 10 + (s[p + 1] - '0');
        p += 2;
    } else {
        *d = s[p] - '0';
        p += 1;
    }
    if (p < n) { /* ^[T ]%d%d?:%d%d */
        if (s[p] != 'T' && s[p] != ' ')
            return 0;
        p++;
        if (p >= n || !mr_is_digit(s[p]))
            return 0;
        if (p + 1 < n && mr_is_digit(s[p + 1]))
            p += 2;
        else
            p += 1;
        if (p + 2 >= n || s[p] != ':' || !mr_is_digit(s[p + 1]) || !mr_is_digit(s[p + 2]))
            return 0;
    }
    *y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    return valid_date(*y, *m, *d);
}

int mr_push_date(lua_State *L, int idx, long long offset_ms, int *key)
{
    int y, m, d;
    long long ms;
    char out[10];
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER:
        if (!epoch_from_number(L, idx, &ms) || !date_from_epoch(ms, offset_ms, &y, &m, &d))
            return 0;
        break;
    case LUA_TSTRING: {
        size_t len, b, e;
        const unsigned char *s = (const unsigned char *)lua_tolstring(L, idx, &len);
        mr_trim(s, len, &b, &e);
        if (is_epoch_text(s + b, e - b)) {
            if (!epoch_from_text(s + b, e - b, &ms) || !date_from_epoch(ms, offset_ms, &y, &m, &d))
                return 0;
            break;
        }
        if (!date_from_text(s + b, e - b, &y, &m, &d))
            return 0;
        if (b == 0 && e == len && len == 10 && s[4] == '-' && s[7] == '-') { /* already YYYY-MM-DD: the value itself */
            lua_pushvalue(L, idx);
            *key = y * 10000 + m * 100 + d;
            return 1;
        }
        break;
    }
    default:
        return 0;
    }
    out[0] = (char)('0' + y / 1000);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    lua_pushlstring(L, out, sizeof out);
    *key = y * 10000 + m * 100 + d;
    return 1;
}

/* normalize_date(value, utc_offset_hours) → "YYYY-MM-DD" | nil */
int mr_l_normalize_date(lua_State *L)
{
    long long offset_ms = mr_utc_offset_ms(L, 2);
    int key;
    if (!mr_push_date(L, 1, offset_ms, &key))
        lua_pushnil(L);
    return 1;
}
