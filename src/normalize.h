/* Internal interface of the report normalizer (docs/normalize.md): numbers
 * (normalize_number.c), dates (normalize_date.c) and the report walk
 * (normalize.c). Nothing here keeps state: every call works on its lua_State. */
#ifndef MR_NORMALIZE_H
#define MR_NORMALIZE_H

#include <stddef.h>

#include "compat.h"

#define MR_MS_PER_HOUR 3600000LL
#define MR_DEFAULT_UTC_OFFSET_MS (8 * MR_MS_PER_HOUR) /* China Standard Time */

/* Lua's %s in the C locale (and LuaJIT's): \t \n \v \f \r and space. */
static inline int mr_is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static inline int mr_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* The trimmed part of s[0..len) is s[*b..*e). */
static inline void mr_trim(const unsigned char *s, size_t len, size_t *b, size_t *e)
{
    size_t i = 0, j = len;
    while (i < j && mr_is_space(s[i]))
        i++;
    while (j > i && mr_is_space(s[j - 1]))
        j--;
    *b = i;
    *e = j;
}

/* f % 1 == 0 for a finite f. */
int mr_is_integral(lua_Number f);

/* normalize.number of the value at idx: pushes the number and returns 1, or
 * returns 0 and pushes nothing. */
int mr_push_number(lua_State *L, int idx);

/* normalize.number of the text[0..len). src is the stack index of a string
 * that is exactly this text (its bytes are then converted in place), or 0. */
int mr_push_number_text(lua_State *L, const char *text, size_t len, int src);

/* utc_offset_hours at idx as whole milliseconds: the default for none/nil;
 * raises for anything outside -12..14 in steps of 0.25. */
long long mr_utc_offset_ms(lua_State *L, int idx);

/* normalize.date of the value at idx: pushes "YYYY-MM-DD", stores its sort
 * key (yyyymmdd) in *key and returns 1; or returns 0 and pushes nothing. */
int mr_push_date(lua_State *L, int idx, long long offset_ms, int *key);

/* The Lua bindings core.normalize_number and core.normalize_date. */
int mr_l_normalize_number(lua_State *L);
int mr_l_normalize_date(lua_State *L);

/* Sets core.keyword_matches (analysis_search.c), the analysis' keyword search
 * over normalized records, in the table at the top of the stack. */
void mr_analysis_search_register(lua_State *L);

#endif
