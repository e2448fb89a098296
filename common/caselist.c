/*
 * caselist.c — the lists' rows, index keys and paged queries (caselist.h).
 * A row is encoded as a few fixed fields and then its strings, each ended by
 * NUL, in a fixed order; an index key is tag, value, NUL, then the order key
 * (big-endian, so LMDB's byte order is the list's order) and the row's id.
 */
#include "caselist.h"
#include "bytes.h"
#include "pbjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROW_VERSION 1
#define KEY_MAX 512
#define ROW_MAX 4096
#define MAX_SOURCES CB_LIST_MAX_ORGS

/* The API's words are AlertLevel's (events and views say "escalation"); the
 * index keys keep the word they were first written with, "escalated", which
 * is also still read. */
static const char *const level_names[] = {"none", "yellow", "red", "escalation"};
static const char *const level_tags[] = {"none", "yellow", "red", "escalated"};

const char *cb_level_name(int level)
{
    return level >= 0 && level <= 3 ? level_names[level] : "none";
}

int cb_alert_level(const Casebus__V1__Envelope *env)
{
    switch (env->body_case) {
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_WARNING: return CB_LEVEL_YELLOW;
    case CASEBUS__V1__ENVELOPE__BODY_DEADLINE_BREACHED: return CB_LEVEL_RED;
    case CASEBUS__V1__ENVELOPE__BODY_ESCALATED: return CB_LEVEL_ESCALATED;
    default: return -1;
    }
}

const Casebus__V1__Obligation *cb_event_obligation(const Casebus__V1__Envelope *env)
{
    ProtobufCMessage *ob = cb_pb_message_named(
        cb_pb_message_field(&env->base, (unsigned)env->body_case), "obligation");
    return ob && ob->descriptor == &casebus__v1__obligation__descriptor
               ? (const Casebus__V1__Obligation *)ob
               : NULL;
}

static const char *level_tag(int level)
{
    return level >= 0 && level <= 3 ? level_tags[level] : "none";
}

int cb_level_parse(const char *word)
{
    for (int i = 0; word && i <= 3; i++)
        if (strcmp(word, level_names[i]) == 0 || strcmp(word, level_tags[i]) == 0)
            return i;
    return -1;
}

int cb_lists_open(cb_lists_t *l, cb_store_t *s, cb_error_t *err)
{
    const cb_store_dbi_spec_t dbis[] = {
        {"case_rows", &l->case_rows}, {"case_index", &l->case_index}, {"ob_rows", &l->ob_rows},
        {"ob_index", &l->ob_index},   {"ob_counts", &l->ob_counts},
    };
    return cb_store_dbis(s, dbis, sizeof(dbis) / sizeof(dbis[0]), err);
}

/* ---- encoding ---- */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
    bool over;
} buf_t;

static void put_bytes(buf_t *b, const void *v, size_t n)
{
    if (b->len + n > b->cap) {
        b->over = true;
        return;
    }
    memcpy(b->p + b->len, v, n);
    b->len += n;
}

static void put_str(buf_t *b, const char *s)
{
    put_bytes(b, s ? s : "", strlen(s ? s : "") + 1);
}

static void put_i64(buf_t *b, int64_t v)
{
    uint8_t x[8];
    cb_be64_put(x, (uint64_t)v);
    put_bytes(b, x, 8);
}

typedef struct rd {
    const uint8_t *p;
    size_t len, at;
    bool bad;
} rd_t;

static int64_t get_i64(rd_t *r)
{
    if (r->at + 8 > r->len) {
        r->bad = true;
        return 0;
    }
    int64_t v = (int64_t)cb_be64_get(r->p + r->at);
    r->at += 8;
    return v;
}

static uint8_t get_u8(rd_t *r)
{
    if (r->at + 1 > r->len) {
        r->bad = true;
        return 0;
    }
    return r->p[r->at++];
}

static void get_str(rd_t *r, char *out, size_t size)
{
    const uint8_t *end = r->at < r->len ? memchr(r->p + r->at, 0, r->len - r->at) : NULL;
    if (end == NULL) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    size_t n = (size_t)(end - (r->p + r->at));
    snprintf(out, size, "%.*s", (int)n, (const char *)(r->p + r->at));
    r->at += n + 1;
}

static size_t case_encode(const cb_case_row_t *row, uint8_t *out, size_t cap)
{
    buf_t b = {.p = out, .cap = cap};
    uint8_t head[4] = {ROW_VERSION, row->level, row->overdue,
                       (uint8_t)(row->norgs < CB_LIST_MAX_ORGS ? row->norgs : CB_LIST_MAX_ORGS)};
    put_bytes(&b, head, 4);
    put_i64(&b, row->reported_ms);
    put_i64(&b, row->discovered_ms);
    put_i64(&b, row->next_due_ms);
    put_i64(&b, row->open);
    const char *strs[] = {row->case_id,     row->township,   row->township_name, row->matter,
                          row->matter_name, row->state,      row->finder,        row->competent,
                          row->holder,      row->description};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        put_str(&b, strs[i]);
    for (size_t i = 0; i < head[3]; i++)
        put_str(&b, row->orgs[i]);
    return b.over ? 0 : b.len;
}

static int case_decode(cb_case_row_t *row, const void *data, size_t len)
{
    rd_t r = {.p = data, .len = len};
    memset(row, 0, sizeof(*row));
    if (get_u8(&r) != ROW_VERSION)
        return -1;
    row->level = get_u8(&r);
    row->overdue = get_u8(&r) != 0;
    row->norgs = get_u8(&r);
    row->reported_ms = get_i64(&r);
    row->discovered_ms = get_i64(&r);
    row->next_due_ms = get_i64(&r);
    row->open = (uint32_t)get_i64(&r);
    get_str(&r, row->case_id, sizeof(row->case_id));
    get_str(&r, row->township, sizeof(row->township));
    get_str(&r, row->township_name, sizeof(row->township_name));
    get_str(&r, row->matter, sizeof(row->matter));
    get_str(&r, row->matter_name, sizeof(row->matter_name));
    get_str(&r, row->state, sizeof(row->state));
    get_str(&r, row->finder, sizeof(row->finder));
    get_str(&r, row->competent, sizeof(row->competent));
    get_str(&r, row->holder, sizeof(row->holder));
    get_str(&r, row->description, sizeof(row->description));
    if (row->norgs > CB_LIST_MAX_ORGS)
        return -1;
    for (size_t i = 0; i < row->norgs; i++)
        get_str(&r, row->orgs[i], sizeof(row->orgs[i]));
    return r.bad ? -1 : 0;
}

static size_t ob_encode(const cb_ob_row_t *row, uint8_t *out, size_t cap)
{
    buf_t b = {.p = out, .cap = cap};
    uint8_t head[3] = {ROW_VERSION, row->level, row->paused};
    put_bytes(&b, head, 3);
    put_i64(&b, row->due_ms);
    const char *strs[] = {row->obligation_id, row->case_id,       row->rule_id,
                          row->title,         row->responsible,   row->responsible_name,
                          row->township,      row->supervision_id};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        put_str(&b, strs[i]);
    return b.over ? 0 : b.len;
}

static int ob_decode(cb_ob_row_t *row, const void *data, size_t len)
{
    rd_t r = {.p = data, .len = len};
    memset(row, 0, sizeof(*row));
    if (get_u8(&r) != ROW_VERSION)
        return -1;
    row->level = get_u8(&r);
    row->paused = get_u8(&r) != 0;
    row->due_ms = get_i64(&r);
    get_str(&r, row->obligation_id, sizeof(row->obligation_id));
    get_str(&r, row->case_id, sizeof(row->case_id));
    get_str(&r, row->rule_id, sizeof(row->rule_id));
    get_str(&r, row->title, sizeof(row->title));
    get_str(&r, row->responsible, sizeof(row->responsible));
    get_str(&r, row->responsible_name, sizeof(row->responsible_name));
    get_str(&r, row->township, sizeof(row->township));
    get_str(&r, row->supervision_id, sizeof(row->supervision_id));
    return r.bad ? -1 : 0;
}

/* ---- index keys ---- */

typedef struct ikey {
    uint8_t b[KEY_MAX];
    size_t len, plen; /* whole key, prefix (tag value NUL) */
} ikey_t;

static bool key_prefix(ikey_t *k, char tag, const char *value)
{
    size_t n = strlen(value ? value : "");
    if (n + 2 > KEY_MAX - 8 - CB_LIST_ID_MAX)
        return false;
    k->b[0] = (uint8_t)tag;
    memcpy(k->b + 1, value ? value : "", n);
    k->b[n + 1] = 0;
    k->plen = k->len = n + 2;
    return true;
}

static bool key_suffix(ikey_t *k, const uint8_t *suffix, size_t n)
{
    if (k->plen + n > KEY_MAX)
        return false;
    memcpy(k->b + k->plen, suffix, n);
    k->len = k->plen + n;
    return true;
}

/* order key (8 bytes) then id */
static size_t make_suffix(uint8_t *out, uint64_t order, const char *id)
{
    size_t n = strlen(id);
    if (n >= CB_LIST_ID_MAX)
        n = CB_LIST_ID_MAX - 1;
    cb_be64_put(out, order);
    memcpy(out + 8, id, n);
    return 8 + n;
}

typedef struct tagv {
    char tag;
    const char *value;
} tagv_t;

static size_t case_tags(const cb_case_row_t *row, tagv_t *t)
{
    size_t n = 0;
    t[n++] = (tagv_t){'a', ""};
    t[n++] = (tagv_t){'t', row->township};
    t[n++] = (tagv_t){'s', row->state};
    t[n++] = (tagv_t){'m', row->matter};
    t[n++] = (tagv_t){'l', level_tag(row->level)};
    if (row->overdue)
        t[n++] = (tagv_t){'v', "1"};
    for (size_t i = 0; i < row->norgs && i < CB_LIST_MAX_ORGS; i++)
        t[n++] = (tagv_t){'o', row->orgs[i]};
    return n;
}

static size_t ob_tags(const cb_ob_row_t *row, tagv_t *t)
{
    size_t n = 0;
    t[n++] = (tagv_t){'a', ""};
    t[n++] = (tagv_t){'r', row->responsible};
    t[n++] = (tagv_t){'l', level_tag(row->level)};
    t[n++] = (tagv_t){'t', row->township};
    return n;
}

static int index_keys(MDB_txn *txn, MDB_dbi dbi, const tagv_t *tags, size_t ntags,
                      const uint8_t *suffix, size_t slen, bool add, cb_error_t *err)
{
    for (size_t i = 0; i < ntags; i++) {
        ikey_t k;
        if (!key_prefix(&k, tags[i].tag, tags[i].value) || !key_suffix(&k, suffix, slen))
            return cb_error_set(err, CB_ERR_INVALID, "", "list key too long");
        MDB_val kv = {.mv_size = k.len, .mv_data = k.b}, vv = {.mv_size = 0, .mv_data = ""};
        int rc = add ? mdb_put(txn, dbi, &kv, &vv, 0) : mdb_del(txn, dbi, &kv, NULL);
        if (rc != 0 && !(rc == MDB_NOTFOUND && !add))
            return cb_store_error(rc, "update a list index", err);
    }
    return 0;
}

static bool tag_in(const tagv_t *t, const tagv_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i].tag == t->tag && strcmp(set[i].value, t->value) == 0)
            return true;
    return false;
}

/* Moves a row's index keys from its old tags and suffix to its new ones,
 * touching only the keys that differ when the suffix (its place in the order)
 * stays. */
static int reindex(MDB_txn *txn, MDB_dbi dbi, const tagv_t *old, size_t nold,
                   const uint8_t *osuffix, size_t oslen, const tagv_t *new, size_t nnew,
                   const uint8_t *nsuffix, size_t nslen, cb_error_t *err)
{
    bool same_place = oslen == nslen && memcmp(osuffix, nsuffix, nslen) == 0;
    int rc = 0;
    for (size_t i = 0; i < nold && rc == 0; i++)
        if (!same_place || !tag_in(&old[i], new, nnew))
            rc = index_keys(txn, dbi, &old[i], 1, osuffix, oslen, false, err);
    for (size_t i = 0; i < nnew && rc == 0; i++)
        if (!same_place || !tag_in(&new[i], old, nold))
            rc = index_keys(txn, dbi, &new[i], 1, nsuffix, nslen, true, err);
    return rc;
}

static uint64_t newest_first(int64_t reported_ms)
{
    return ~(uint64_t)reported_ms;
}

int cb_lists_case_put(const cb_lists_t *l, MDB_txn *txn, const cb_case_row_t *row, cb_error_t *err)
{
    cb_case_row_t old;
    uint8_t enc[ROW_MAX], osuffix[8 + CB_LIST_ID_MAX], suffix[8 + CB_LIST_ID_MAX];
    tagv_t otags[8 + CB_LIST_MAX_ORGS], tags[8 + CB_LIST_MAX_ORGS];
    size_t nold = 0, oslen = 0;
    MDB_val k = cb_store_key(row->case_id), v;
    int rc = mdb_get(txn, l->case_rows, &k, &v);
    if (rc == 0 && case_decode(&old, v.mv_data, v.mv_size) == 0) {
        oslen = make_suffix(osuffix, newest_first(old.reported_ms), old.case_id);
        nold = case_tags(&old, otags);
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        return cb_store_error(rc, "read a case row", err);
    }
    size_t len = case_encode(row, enc, sizeof(enc));
    if (len == 0)
        return cb_error_set(err, CB_ERR_INVALID, "", "case row too large");
    v.mv_size = len;
    v.mv_data = enc;
    if ((rc = mdb_put(txn, l->case_rows, &k, &v, 0)) != 0)
        return cb_store_error(rc, "store a case row", err);
    size_t slen = make_suffix(suffix, newest_first(row->reported_ms), row->case_id);
    return reindex(txn, l->case_index, otags, nold, osuffix, oslen, tags, case_tags(row, tags),
                   suffix, slen, err);
}

int cb_lists_org_counts(const cb_lists_t *l, MDB_txn *txn, const char *org, cb_org_counts_t *c,
                        cb_error_t *err)
{
    memset(c, 0, sizeof(*c));
    MDB_val k = cb_store_key(org), v;
    int rc = mdb_get(txn, l->ob_counts, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return cb_store_error(rc, "read an organisation's counts", err);
    if (v.mv_size != 16)
        return cb_error_set(err, CB_ERR_CORRUPT, "", "counts of %s do not decode", org);
    const uint8_t *p = v.mv_data;
    c->open = cb_be32_get(p);
    c->yellow = cb_be32_get(p + 4);
    c->red = cb_be32_get(p + 8);
    c->escalated = cb_be32_get(p + 12);
    return 0;
}

/* Adds (sign 1) or takes away (-1) a running limit from its organisation's counts. */
static int count_move(const cb_lists_t *l, MDB_txn *txn, const cb_ob_row_t *row, int sign,
                      cb_error_t *err)
{
    if (row->paused || row->responsible[0] == '\0')
        return 0;
    cb_org_counts_t c;
    int rc = cb_lists_org_counts(l, txn, row->responsible, &c, err);
    if (rc != 0)
        return rc;
    uint32_t *f[4] = {&c.open, &c.yellow, &c.red, &c.escalated};
    for (int i = 0; i < 4; i++) {
        /* red counts every limit past due, escalated or not */
        bool counts = i == 0 || row->level == i || (i == 2 && row->level > 2);
        if (counts && sign < 0 && *f[i] > 0)
            (*f[i])--;
        else if (counts && sign > 0)
            (*f[i])++;
    }
    uint8_t b[16];
    cb_be32_put(b, c.open);
    cb_be32_put(b + 4, c.yellow);
    cb_be32_put(b + 8, c.red);
    cb_be32_put(b + 12, c.escalated);
    MDB_val k = cb_store_key(row->responsible), v = {.mv_size = 16, .mv_data = b};
    if ((rc = mdb_put(txn, l->ob_counts, &k, &v, 0)) != 0)
        return cb_store_error(rc, "store an organisation's counts", err);
    return 0;
}

int cb_lists_ob_get(const cb_lists_t *l, MDB_txn *txn, const char *obligation_id, cb_ob_row_t *row,
                    cb_error_t *err)
{
    MDB_val k = cb_store_key(obligation_id), v;
    int rc = mdb_get(txn, l->ob_rows, &k, &v);
    if (rc == MDB_NOTFOUND)
        return CB_ERR_NOT_FOUND;
    if (rc != 0)
        return cb_store_error(rc, "read an obligation row", err);
    if (ob_decode(row, v.mv_data, v.mv_size) != 0)
        return cb_error_set(err, CB_ERR_CORRUPT, "", "an obligation row does not decode");
    return 0;
}

int cb_lists_ob_del(const cb_lists_t *l, MDB_txn *txn, const char *obligation_id, cb_error_t *err)
{
    cb_ob_row_t old;
    uint8_t suffix[8 + CB_LIST_ID_MAX];
    tagv_t tags[8];
    int rc = cb_lists_ob_get(l, txn, obligation_id, &old, err);
    if (rc == CB_ERR_NOT_FOUND)
        return 0;
    if (rc != 0)
        return rc;
    size_t slen = make_suffix(suffix, (uint64_t)old.due_ms, old.obligation_id);
    if ((rc = index_keys(txn, l->ob_index, tags, ob_tags(&old, tags), suffix, slen, false, err)) ||
        (rc = count_move(l, txn, &old, -1, err)))
        return rc;
    MDB_val k = cb_store_key(obligation_id);
    if ((rc = mdb_del(txn, l->ob_rows, &k, NULL)) != 0)
        return cb_store_error(rc, "delete an obligation row", err);
    return 0;
}

int cb_lists_ob_put(const cb_lists_t *l, MDB_txn *txn, const cb_ob_row_t *row, cb_error_t *err)
{
    uint8_t enc[ROW_MAX], suffix[8 + CB_LIST_ID_MAX];
    tagv_t tags[8];
    int rc = cb_lists_ob_del(l, txn, row->obligation_id, err);
    if (rc != 0)
        return rc;
    size_t len = ob_encode(row, enc, sizeof(enc));
    if (len == 0)
        return cb_error_set(err, CB_ERR_INVALID, "", "obligation row too large");
    MDB_val k = cb_store_key(row->obligation_id), v = {.mv_size = len, .mv_data = enc};
    if ((rc = mdb_put(txn, l->ob_rows, &k, &v, 0)) != 0)
        return cb_store_error(rc, "store an obligation row", err);
    size_t slen = make_suffix(suffix, (uint64_t)row->due_ms, row->obligation_id);
    if ((rc = count_move(l, txn, row, 1, err)) != 0)
        return rc;
    return index_keys(txn, l->ob_index, tags, ob_tags(row, tags), suffix, slen, true, err);
}

/* Keys of the 'a' index of dbi with order below stop, from start, up to max. */
static int count_keys(MDB_txn *txn, MDB_dbi dbi, uint64_t start, uint64_t stop, uint64_t max,
                      uint64_t *count, cb_error_t *err)
{
    *count = 0;
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0)
        return cb_store_error(rc, "open a list cursor", err);
    uint8_t seek[10] = {'a', 0};
    cb_be64_put(seek + 2, start);
    MDB_val k = {.mv_size = sizeof(seek), .mv_data = seek}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && *count < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = k.mv_data;
        if (k.mv_size < 10 || p[0] != 'a' || p[1] != 0 || cb_be64_get(p + 2) >= stop)
            break;
        (*count)++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return cb_store_error(rc, "count a list", err);
    return 0;
}

int cb_lists_count_since(const cb_lists_t *l, MDB_txn *txn, int64_t from_ms, uint64_t max,
                         uint64_t *count, cb_error_t *err)
{
    return count_keys(txn, l->case_index, 0, newest_first(from_ms) + 1, max, count, err);
}

int cb_lists_count_due_before(const cb_lists_t *l, MDB_txn *txn, int64_t to_ms, uint64_t max,
                              uint64_t *count, cb_error_t *err)
{
    return count_keys(txn, l->ob_index, 0, (uint64_t)to_ms, max, count, err);
}

/* ---- cursors ---- */

static void cursor_format(const uint8_t *suffix, size_t slen, char out[CB_LIST_CURSOR_MAX])
{
    snprintf(out, CB_LIST_CURSOR_MAX, "%016llx.%.*s", (unsigned long long)cb_be64_get(suffix),
             (int)(slen - 8), (const char *)(suffix + 8));
}

static int cursor_parse(const char *text, uint8_t *suffix, size_t *slen, cb_error_t *err)
{
    char hex[17];
    size_t n = text ? strlen(text) : 0;
    if (n < 18 || n > 17 + CB_LIST_ID_MAX - 1 || text[16] != '.')
        goto bad;
    memcpy(hex, text, 16);
    hex[16] = '\0';
    char *end;
    unsigned long long order = strtoull(hex, &end, 16);
    if (*end != '\0' || strspn(hex, "0123456789abcdef") != 16)
        goto bad;
    for (const char *p = text + 17; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            goto bad;
    *slen = make_suffix(suffix, order, text + 17);
    return 0;
bad:
    return cb_error_set(err, CB_ERR_INVALID, "cursor",
                        "cursor: not a cursor this list gave (pass next_cursor as it came)");
}

/* ---- scanning ---- */

typedef struct source {
    MDB_cursor *cur;
    ikey_t prefix;
    MDB_val k;
    bool live;
} source_t;

typedef struct scan {
    source_t src[MAX_SOURCES];
    size_t n;
} scan_t;

static int cmp_suffix(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen < blen ? -1 : alen > blen);
}

static const uint8_t *suffix_of(const source_t *s, size_t *len)
{
    *len = s->k.mv_size - s->prefix.plen;
    return (const uint8_t *)s->k.mv_data + s->prefix.plen;
}

static void check_live(source_t *s, int rc)
{
    s->live = rc == 0 && s->k.mv_size >= s->prefix.plen + 8 &&
              memcmp(s->k.mv_data, s->prefix.b, s->prefix.plen) == 0;
}

static int scan_add(scan_t *sc, MDB_txn *txn, MDB_dbi dbi, char tag, const char *value,
                    const uint8_t *start, size_t slen, cb_error_t *err)
{
    if (sc->n == MAX_SOURCES)
        return cb_error_set(err, CB_ERR_INVALID, "", "too many organisations to list at once");
    source_t *s = &sc->src[sc->n];
    memset(s, 0, sizeof(*s));
    if (!key_prefix(&s->prefix, tag, value))
        return cb_error_set(err, CB_ERR_INVALID, "", "filter value too long");
    int rc = mdb_cursor_open(txn, dbi, &s->cur);
    if (rc != 0)
        return cb_store_error(rc, "open a list cursor", err);
    sc->n++;
    ikey_t seek = s->prefix;
    key_suffix(&seek, start, slen);
    s->k.mv_size = seek.len;
    s->k.mv_data = seek.b;
    MDB_val v;
    rc = mdb_cursor_get(s->cur, &s->k, &v, MDB_SET_RANGE);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return cb_store_error(rc, "seek a list", err);
    check_live(s, rc);
    return 0;
}

static void scan_close(scan_t *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        mdb_cursor_close(sc->src[i].cur);
    sc->n = 0;
}

/* The source with the smallest suffix, or NULL when all are done. */
static source_t *scan_head(scan_t *sc)
{
    source_t *best = NULL;
    size_t blen = 0, len;
    const uint8_t *bs = NULL;
    for (size_t i = 0; i < sc->n; i++) {
        if (!sc->src[i].live)
            continue;
        const uint8_t *s = suffix_of(&sc->src[i], &len);
        if (best == NULL || cmp_suffix(s, len, bs, blen) < 0) {
            best = &sc->src[i];
            bs = s;
            blen = len;
        }
    }
    return best;
}

/* Moves every source standing at suffix past it (a case listed under two of a
 * caller's organisations comes once). */
static int scan_skip(scan_t *sc, const uint8_t *suffix, size_t slen, cb_error_t *err)
{
    for (size_t i = 0; i < sc->n; i++) {
        source_t *s = &sc->src[i];
        size_t len;
        while (s->live) {
            const uint8_t *at = suffix_of(s, &len);
            if (cmp_suffix(at, len, suffix, slen) > 0)
                break;
            MDB_val v;
            int rc = mdb_cursor_get(s->cur, &s->k, &v, MDB_NEXT);
            if (rc != 0 && rc != MDB_NOTFOUND)
                return cb_store_error(rc, "read a list", err);
            check_live(s, rc);
        }
    }
    return 0;
}

typedef bool (*row_match_fn)(const void *q, MDB_txn *txn, const cb_lists_t *l, const char *id,
                             void *row, int *rc, cb_error_t *err);
typedef int (*row_emit_fn)(void *fn, void *ctx, const void *row);

/* The loop both lists share: from start (or after the cursor), until stop_at
 * (an order key, exclusive), limit rows or the scan budget. */
static int scan_run(scan_t *sc, MDB_txn *txn, const cb_lists_t *l, const void *q,
                    const char *cursor, uint64_t stop_at, unsigned limit, row_match_fn match,
                    void *row, row_emit_fn emit, void *fn, void *ctx, char next[CB_LIST_CURSOR_MAX],
                    cb_error_t *err)
{
    uint8_t after[8 + CB_LIST_ID_MAX], last[8 + CB_LIST_ID_MAX];
    size_t after_len = 0, last_len = 0;
    int rc = 0;
    next[0] = '\0';
    if (cursor && *cursor) {
        if ((rc = cursor_parse(cursor, after, &after_len, err)) != 0)
            return rc;
        if ((rc = scan_skip(sc, after, after_len, err)) != 0)
            return rc;
    }
    unsigned emitted = 0, scanned = 0;
    source_t *h;
    while ((h = scan_head(sc)) != NULL) {
        size_t len;
        const uint8_t *s = suffix_of(h, &len);
        if (cb_be64_get(s) >= stop_at)
            break;
        if (emitted == limit || scanned == CB_LIST_SCAN_MAX) {
            cursor_format(last, last_len, next); /* more may follow */
            break;
        }
        scanned++;
        memcpy(last, s, len);
        last_len = len;
        char id[CB_LIST_ID_MAX];
        snprintf(id, sizeof(id), "%.*s", (int)(len - 8), (const char *)(s + 8));
        if (match(q, txn, l, id, row, &rc, err)) {
            if ((rc = emit(fn, ctx, row)) != 0)
                return rc;
            emitted++;
        } else if (rc != 0) {
            return rc;
        }
        if ((rc = scan_skip(sc, last, last_len, err)) != 0)
            return rc;
    }
    return 0;
}

static bool in_scope(const char *const *scope, size_t n, const char *org)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(scope[i], org) == 0)
            return true;
    return false;
}

static bool case_match(const void *qv, MDB_txn *txn, const cb_lists_t *l, const char *id,
                       void *rowv, int *rc, cb_error_t *err)
{
    const cb_case_query_t *q = qv;
    cb_case_row_t *row = rowv;
    *rc = 0;
    MDB_val k = cb_store_key(id), v;
    int g = mdb_get(txn, l->case_rows, &k, &v);
    if (g == MDB_NOTFOUND)
        return false;
    if (g != 0) {
        *rc = cb_store_error(g, "read a case row", err);
        return false;
    }
    if (case_decode(row, v.mv_data, v.mv_size) != 0) {
        *rc = cb_error_set(err, CB_ERR_CORRUPT, "", "case row %s does not decode", id);
        return false;
    }
    if ((q->township && strcmp(q->township, row->township) != 0) ||
        (q->state && strcmp(q->state, row->state) != 0) ||
        (q->matter && strcmp(q->matter, row->matter) != 0) ||
        (q->holder && strcmp(q->holder, row->holder) != 0) ||
        (q->level >= 0 && q->level != row->level) ||
        (q->overdue >= 0 && q->overdue != (int)row->overdue) ||
        (q->from_ms && row->reported_ms < q->from_ms))
        return false;
    bool org_ok = q->org == NULL, scope_ok = q->scope == NULL;
    for (size_t i = 0; i < row->norgs; i++) {
        org_ok = org_ok || strcmp(q->org, row->orgs[i]) == 0;
        scope_ok = scope_ok || in_scope(q->scope, q->nscope, row->orgs[i]);
    }
    return org_ok && scope_ok;
}

static int case_emit(void *fn, void *ctx, const void *row)
{
    return (*(cb_case_row_fn *)fn)(ctx, row);
}

int cb_lists_cases(const cb_lists_t *l, MDB_txn *txn, const cb_case_query_t *q, cb_case_row_fn fn,
                   void *ctx, char next[CB_LIST_CURSOR_MAX], cb_error_t *err)
{
    cb_case_row_t row;
    scan_t sc = {.n = 0};
    uint8_t start[8];
    /* Newest first: the order key is ~reported_at, so [from, to) is
     * [~(to - 1), ~from] and a scan stops past ~from. */
    cb_be64_put(start, q->to_ms ? newest_first(q->to_ms - 1) : 0);
    uint64_t stop = q->from_ms > 0 ? newest_first(q->from_ms) + 1 : UINT64_MAX;
    int rc = 0;
    if (q->org)
        rc = scan_add(&sc, txn, l->case_index, 'o', q->org, start, 8, err);
    else if (q->scope)
        for (size_t i = 0; rc == 0 && i < q->nscope; i++)
            rc = scan_add(&sc, txn, l->case_index, 'o', q->scope[i], start, 8, err);
    /* The index most likely to be the sparsest: red and escalated cases are few,
     * then a matter, a township, a state. */
    else if (q->level >= CB_LEVEL_RED)
        rc = scan_add(&sc, txn, l->case_index, 'l', level_tag(q->level), start, 8, err);
    else if (q->overdue == 1)
        rc = scan_add(&sc, txn, l->case_index, 'v', "1", start, 8, err);
    else if (q->matter)
        rc = scan_add(&sc, txn, l->case_index, 'm', q->matter, start, 8, err);
    else if (q->township)
        rc = scan_add(&sc, txn, l->case_index, 't', q->township, start, 8, err);
    else if (q->level >= 0)
        rc = scan_add(&sc, txn, l->case_index, 'l', level_tag(q->level), start, 8, err);
    else if (q->state)
        rc = scan_add(&sc, txn, l->case_index, 's', q->state, start, 8, err);
    else
        rc = scan_add(&sc, txn, l->case_index, 'a', "", start, 8, err);
    if (rc == 0)
        rc = scan_run(&sc, txn, l, q, q->cursor, stop, q->limit, case_match, &row, case_emit, &fn,
                      ctx, next, err);
    scan_close(&sc);
    return rc;
}

static bool ob_match(const void *qv, MDB_txn *txn, const cb_lists_t *l, const char *id, void *rowv,
                     int *rc, cb_error_t *err)
{
    const cb_ob_query_t *q = qv;
    cb_ob_row_t *row = rowv;
    *rc = cb_lists_ob_get(l, txn, id, row, err);
    if (*rc == CB_ERR_NOT_FOUND)
        *rc = 0;
    if (*rc != 0)
        return false;
    if ((q->responsible && strcmp(q->responsible, row->responsible) != 0) ||
        (q->township && strcmp(q->township, row->township) != 0) ||
        (q->rule && strcmp(q->rule, row->rule_id) != 0) ||
        (q->case_id && strcmp(q->case_id, row->case_id) != 0) ||
        (q->level >= 0 && q->level != row->level) || (row->paused && !q->include_paused))
        return false;
    return q->scope == NULL || in_scope(q->scope, q->nscope, row->responsible);
}

static int ob_emit(void *fn, void *ctx, const void *row)
{
    return (*(cb_ob_row_fn *)fn)(ctx, row);
}

int cb_lists_obligations(const cb_lists_t *l, MDB_txn *txn, const cb_ob_query_t *q, cb_ob_row_fn fn,
                         void *ctx, char next[CB_LIST_CURSOR_MAX], cb_error_t *err)
{
    cb_ob_row_t row;
    scan_t sc = {.n = 0};
    uint8_t start[8];
    cb_be64_put(start, q->due_from_ms > 0 ? (uint64_t)q->due_from_ms : 0);
    uint64_t stop = q->due_to_ms > 0 ? (uint64_t)q->due_to_ms : UINT64_MAX;
    int rc = 0;
    if (q->responsible)
        rc = scan_add(&sc, txn, l->ob_index, 'r', q->responsible, start, 8, err);
    else if (q->scope)
        for (size_t i = 0; rc == 0 && i < q->nscope; i++)
            rc = scan_add(&sc, txn, l->ob_index, 'r', q->scope[i], start, 8, err);
    else if (q->level >= 0)
        rc = scan_add(&sc, txn, l->ob_index, 'l', level_tag(q->level), start, 8, err);
    else if (q->township)
        rc = scan_add(&sc, txn, l->ob_index, 't', q->township, start, 8, err);
    else
        rc = scan_add(&sc, txn, l->ob_index, 'a', "", start, 8, err);
    if (rc == 0)
        rc = scan_run(&sc, txn, l, q, q->cursor, stop, q->limit, ob_match, &row, ob_emit, &fn, ctx,
                      next, err);
    scan_close(&sc);
    return rc;
}
