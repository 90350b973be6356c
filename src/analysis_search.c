/* core.keyword_matches: the keyword search of analysis.lua (its "Keyword
 * search" comment gives the rule), in one pass over the records' texts.
 *
 *   core.keyword_matches(records, extra, lists) -> { found_1, ..., found_k } | nil
 *
 * records, extra: lists of record tables; a record table met again (by
 * identity) is searched once. lists: keyword lists. found_i maps each record
 * that matches list i to the matching keyword (the list's own string). A
 * record's texts are its type, then items[1..#items] (none when items[1] is
 * nil); it matches with the first keyword, in list order, found in its first
 * text that holds one; ASCII case is ignored (both sides through toupper,
 * as string.upper does).
 *
 * Returns nil, without raising, for anything but plain data: a record, an
 * items list or a keyword list with a metatable, a type or item that is not
 * a string, a keyword that is empty or holds a NUL. The caller then runs the
 * Lua search, which gives its own answer (or error) for such input.
 *
 * All texts are upper-cased into one buffer, a NUL after each, and each
 * keyword is searched there from left to right; a keyword without a NUL
 * cannot match across a boundary. After a hit the search goes on at the next
 * record's texts. The buffer is a userdata (an upvalue of the function,
 * reused by the next call: no C state is shared between lua_States, and the
 * search runs no Lua code, so no other call can use it meanwhile), so a Lua
 * error (out of memory) leaks nothing. */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "normalize.h"

/* The largest scratch block a closure keeps between calls: the texts of a
 * report of some hundred records. A larger one is made for its call only. */
#define SCRATCH_KEEP ((size_t)64 * 1024)

typedef struct {
    size_t start;    /* byte of the buffer where the text starts */
    int record;      /* index of its record in recs[] */
} text_ref;

typedef struct {
    int list;        /* 1: records, 2: extra */
    int pos;         /* index in that list */
    size_t end;      /* one past its last text's NUL in the buffer */
    int best_text;   /* text number of the best hit of the current list, or -1 */
    int best_kw;     /* its keyword's index in the list */
} rec_ref;

/* A plain table: a table without a metatable. */
static int is_plain_table(lua_State *L, int idx)
{
    if (!lua_istable(L, idx))
        return 0;
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

/* Open-addressing set of table pointers: returns 1 when p was already in it. */
static int seen_before(const void **slots, size_t mask, const void *p)
{
    size_t h = ((size_t)(uintptr_t)p >> 4) * (size_t)2654435761u;
    for (h &= mask;; h = (h + 1) & mask) {
        if (slots[h] == p)
            return 1;
        if (slots[h] == NULL) {
            slots[h] = p;
            return 0;
        }
    }
}

/* The record at the top of the stack: its texts' count and bytes, or -1 when
 * it is not plain data. Leaves the stack as it was. */
static int record_texts(lua_State *L, size_t *bytes)
{
    int count = 0, n, i, top = lua_gettop(L);
    if (!is_plain_table(L, top))
        return -1;
    lua_pushliteral(L, "type");
    lua_rawget(L, top);
    if (lua_type(L, -1) == LUA_TSTRING) {
        *bytes += lua_rawlen(L, -1) + 1;
        count++;
    } else if (lua_toboolean(L, -1)) {
        lua_settop(L, top);
        return -1;
    }
    lua_pushliteral(L, "items");
    lua_rawget(L, top);
    if (lua_toboolean(L, -1)) {
        if (!is_plain_table(L, -1)) {
            lua_settop(L, top);
            return -1;
        }
        lua_rawgeti(L, -1, 1);
        n = lua_isnil(L, -1) ? 0 : (int)lua_rawlen(L, -2);
        lua_pop(L, 1);
        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            if (lua_type(L, -1) != LUA_TSTRING) {
                lua_settop(L, top);
                return -1;
            }
            *bytes += lua_rawlen(L, -1) + 1;
            lua_pop(L, 1);
        }
        count += n;
    }
    lua_settop(L, top);
    return count;
}

/* Appends the text at the top of the stack through upper[] (toupper of each
 * byte value, as string.upper maps them), then a NUL, counting its bytes. */
static size_t append_upper(lua_State *L, char *buf, size_t at, const unsigned char *upper,
                           size_t *counts)
{
    size_t len, i;
    const unsigned char *s = (const unsigned char *)lua_tolstring(L, -1, &len);
    for (i = 0; i < len; i++) {
        unsigned char c = upper[s[i]];
        buf[at + i] = (char)c;
        counts[c]++;
    }
    buf[at + len] = '\0';
    return at + len + 1;
}

/* The first k[0..klen) in hay[from..end), or NULL. The search looks for the
 * keyword's byte at offset a, the one rarest in the texts (every Chinese
 * character starts with one of a few lead bytes; most other bytes are far
 * rarer), and compares the whole keyword where it finds it. */
static const char *find_from(const char *hay, size_t from, size_t end, const char *k, size_t klen,
                             size_t a)
{
    const char *p, *last;
    if (end - from < klen)
        return NULL;
    p = hay + from + a;
    last = hay + end - klen + a; /* the last place the anchor byte can be */
    while (p <= last) {
        p = memchr(p, (unsigned char)k[a], (size_t)(last - p) + 1);
        if (p == NULL)
            return NULL;
        if (memcmp(p - a, k, klen) == 0)
            return p - a;
        p++;
    }
    return NULL;
}

/* The text holding byte pos: the last t with texts[t].start <= pos. */
static int text_at(const text_ref *texts, int ntexts, size_t pos)
{
    int lo = 0, hi = ntexts - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (texts[mid].start <= pos)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

static int l_keyword_matches(lua_State *L)
{
    int nlists, l, i, r, nrecs = 0, ntexts = 0, nslots_log = 0, cap = 0;
    size_t bytes = 0, kwbytes = 0, nslots, at, used;
    const void **slots;
    rec_ref *recs;
    text_ref *texts;
    char *buf, *kwbuf;
    unsigned char upper[256];
    size_t counts[256];
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    if (!is_plain_table(L, 1) || !is_plain_table(L, 2) || !is_plain_table(L, 3))
        return 0;
    nlists = (int)lua_rawlen(L, 3);
    /* The keyword lists: plain lists of non-empty strings without a NUL. */
    for (l = 1; l <= nlists; l++) {
        int n;
        lua_rawgeti(L, 3, l);
        if (!is_plain_table(L, -1))
            return 0;
        n = (int)lua_rawlen(L, -1);
        for (i = 1; i <= n; i++) {
            size_t klen;
            const char *k;
            lua_rawgeti(L, -1, i);
            if (lua_type(L, -1) != LUA_TSTRING)
                return 0;
            k = lua_tolstring(L, -1, &klen);
            if (klen == 0 || memchr(k, '\0', klen) != NULL)
                return 0;
            if (klen > kwbytes)
                kwbytes = klen;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    /* Pass 1: how many records, texts and bytes (a record seen twice counted twice). */
    for (l = 1; l <= 2; l++) {
        int n = (int)lua_rawlen(L, l);
        for (i = 1; i <= n; i++) {
            int c;
            lua_rawgeti(L, l, i);
            c = record_texts(L, &bytes);
            lua_pop(L, 1);
            if (c < 0)
                return 0;
            ntexts += c;
            cap++;
        }
    }
    while (((size_t)1 << nslots_log) < (size_t)cap * 2 + 2)
        nslots_log++;
    nslots = (size_t)1 << nslots_log;
    lua_createtable(L, nlists, 0); /* the result, at index 4 */
    for (l = 1; l <= nlists; l++) {
        lua_newtable(L);
        lua_rawseti(L, 4, l);
    }
    if (ntexts == 0 || nlists == 0)
        return 1;
    /* slots, recs, texts, then the text and keyword bytes, in one block: the
     * closure's scratch userdata when it is large enough, else a new one
     * (kept as the scratch for the next calls up to SCRATCH_KEEP bytes) */
    used = nslots * sizeof *slots + (size_t)cap * sizeof *recs + (size_t)ntexts * sizeof *texts;
    {
        size_t need = used + bytes + kwbytes + 1;
        char *block;
        if (need <= (size_t)lua_rawlen(L, lua_upvalueindex(1))) {
            lua_pushvalue(L, lua_upvalueindex(1));
            block = lua_touserdata(L, -1);
        } else {
            block = lua_newuserdata(L, need);
            if (need <= SCRATCH_KEEP) {
                lua_pushvalue(L, -1);
                lua_replace(L, lua_upvalueindex(1));
            }
        }
        slots = (const void **)(void *)block;
        recs = (rec_ref *)(void *)(block + nslots * sizeof *slots);
        texts = (text_ref *)(void *)(block + nslots * sizeof *slots + (size_t)cap * sizeof *recs);
        buf = block + used;
        kwbuf = buf + bytes;
    }
    memset((void *)slots, 0, nslots * sizeof *slots);
    memset(counts, 0, sizeof counts);
    for (i = 0; i < 256; i++)
        upper[i] = (unsigned char)toupper(i);
    /* Pass 2: each record once, its texts upper-cased into buf. */
    at = 0;
    ntexts = 0;
    for (l = 1; l <= 2; l++) {
        int n = (int)lua_rawlen(L, l);
        for (i = 1; i <= n; i++) {
            int had = 0, top;
            lua_rawgeti(L, l, i);
            top = lua_gettop(L);
            if (seen_before(slots, nslots - 1, lua_topointer(L, top))) {
                lua_pop(L, 1);
                continue;
            }
            lua_pushliteral(L, "type");
            lua_rawget(L, top);
            if (lua_type(L, -1) == LUA_TSTRING) {
                texts[ntexts].start = at;
                texts[ntexts].record = nrecs;
                ntexts++;
                had = 1;
                at = append_upper(L, buf, at, upper, counts);
            }
            lua_pushliteral(L, "items");
            lua_rawget(L, top);
            if (lua_istable(L, -1)) {
                int k, m;
                lua_rawgeti(L, -1, 1);
                m = lua_isnil(L, -1) ? 0 : (int)lua_rawlen(L, -2);
                lua_pop(L, 1);
                for (k = 1; k <= m; k++) {
                    lua_rawgeti(L, -1, k);
                    texts[ntexts].start = at;
                    texts[ntexts].record = nrecs;
                    ntexts++;
                    had = 1;
                    at = append_upper(L, buf, at, upper, counts);
                    lua_pop(L, 1);
                }
            }
            lua_settop(L, top - 1);
            if (had) {
                recs[nrecs].list = l;
                recs[nrecs].pos = i;
                recs[nrecs].end = at;
                recs[nrecs].best_text = -1;
                recs[nrecs].best_kw = 0;
                nrecs++;
            }
        }
    }
    /* Each list: every keyword from left to right, then the best hit per record. */
    for (l = 1; l <= nlists; l++) {
        int n;
        lua_rawgeti(L, 3, l);     /* the keyword list */
        lua_rawgeti(L, 4, l);     /* its found table */
        n = (int)lua_rawlen(L, -2);
        for (i = 1; i <= n; i++) {
            size_t klen, from = 0, j, anchor = 0;
            const char *k, *hit;
            lua_rawgeti(L, -2, i);
            k = lua_tolstring(L, -1, &klen);
            for (j = 0; j < klen; j++) {
                kwbuf[j] = (char)upper[(unsigned char)k[j]];
                if (counts[(unsigned char)kwbuf[j]] < counts[(unsigned char)kwbuf[anchor]])
                    anchor = j;
            }
            lua_pop(L, 1);
            if (counts[(unsigned char)kwbuf[anchor]] == 0)
                continue; /* a byte the texts do not have: no hit */
            while ((hit = find_from(buf, from, at, kwbuf, klen, anchor)) != NULL) {
                int t = text_at(texts, ntexts, (size_t)(hit - buf));
                rec_ref *rec = &recs[texts[t].record];
                if (rec->best_text < 0 || t < rec->best_text) {
                    rec->best_text = t;
                    rec->best_kw = i;
                }
                from = rec->end;
            }
        }
        for (r = 0; r < nrecs; r++) {
            if (recs[r].best_text < 0)
                continue;
            lua_rawgeti(L, recs[r].list, recs[r].pos);
            lua_rawgeti(L, -3, recs[r].best_kw);
            lua_rawset(L, -3);
            recs[r].best_text = -1;
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 1); /* the userdata */
    return 1;
}

void mr_analysis_search_register(lua_State *L)
{
    lua_newuserdata(L, 0); /* the scratch block, grown on first use */
    lua_pushcclosure(L, l_keyword_matches, 1);
    lua_setfield(L, -2, "keyword_matches");
}
