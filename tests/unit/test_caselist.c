/* test_caselist.c — a case row's index keys follow it as it changes: after
 * every update the index holds exactly the keys of what the row is now. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caselist.h"
#include "testutil.h"

typedef struct fx {
    char *dir;
    cb_store_t *store;
    cb_lists_t lists;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    cb_error_t err;
    if (tu_store_open("caselist", NULL, &f->dir, &f->store, NULL) != 0 ||
        cb_lists_open(&f->lists, f->store, &err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    cb_store_destroy(&f->store);
    tu_rmtree(&f->dir);
    free(f);
    return 0;
}

static void row_init(cb_case_row_t *r, const char *id, int64_t reported, const char *state,
                     const char *const *orgs, size_t norgs)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->case_id, sizeof(r->case_id), "%s", id);
    r->reported_ms = reported;
    snprintf(r->township, sizeof(r->township), "330723101000");
    snprintf(r->matter, sizeof(r->matter), "330217001");
    snprintf(r->state, sizeof(r->state), "%s", state);
    for (size_t i = 0; i < norgs; i++)
        snprintf(r->orgs[r->norgs++], CB_LIST_ORG_MAX, "%s", orgs[i]);
}

static void put(fx_t *f, const cb_case_row_t *r)
{
    MDB_txn *txn;
    cb_error_t err;
    assert_int_equal(cb_store_begin(f->store, true, &txn, &err), 0);
    assert_int_equal(cb_lists_case_put(&f->lists, txn, r, &err), 0);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
}

/* The index as "tag value id" lines, in key order, must be want. */
static void expect_index(fx_t *f, const char *want)
{
    char out[4096];
    size_t cap = sizeof(out);
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    cb_error_t err;
    size_t len = 0;
    out[0] = '\0';
    assert_int_equal(cb_store_begin(f->store, false, &txn, &err), 0);
    assert_int_equal(mdb_cursor_open(txn, f->lists.case_index, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const char *key = k.mv_data;
        size_t vlen = strlen(key + 1); /* tag, value, NUL, be64 order, id */
        const char *id = key + 1 + vlen + 1 + 8;
        int idlen = (int)(k.mv_size - (size_t)(id - key));
        len += (size_t)snprintf(out + len, cap - len, "%c %s %.*s\n", key[0], key + 1, idlen, id);
        assert_true(len < cap);
    }
    mdb_cursor_close(cur);
    cb_store_abort(&txn);
    assert_string_equal(out, want);
}

static void index_follows_every_update(void **state)
{
    fx_t *f = *state;
    const char *two[] = {"wy-scjg", "wy-lt"}, *moved[] = {"wy-lt", "wy-zjj"};
    cb_case_row_t r;

    row_init(&r, "C1", 1000, "reported", two, 2);
    put(f, &r);
    expect_index(f, "a  C1\n"
                    "l none C1\n"
                    "m 330217001 C1\n"
                    "o wy-lt C1\n"
                    "o wy-scjg C1\n"
                    "s reported C1\n"
                    "t 330723101000 C1\n");

    /* A new state, one organisation out and one in, an alert, overdue. */
    row_init(&r, "C1", 1000, "transferring", moved, 2);
    r.level = CB_LEVEL_RED;
    r.overdue = true;
    const char *red = "a  C1\n"
                      "l red C1\n"
                      "m 330217001 C1\n"
                      "o wy-lt C1\n"
                      "o wy-zjj C1\n"
                      "s transferring C1\n"
                      "t 330723101000 C1\n"
                      "v 1 C1\n";
    put(f, &r);
    expect_index(f, red);

    /* The same row again changes nothing. */
    put(f, &r);
    expect_index(f, red);

    /* Its place in the order moves: every key moves with it (none left at
     * the old place, which would list it twice). */
    row_init(&r, "C1", 2000, "transferring", moved, 2);
    put(f, &r);
    expect_index(f, "a  C1\n"
                    "l none C1\n"
                    "m 330217001 C1\n"
                    "o wy-lt C1\n"
                    "o wy-zjj C1\n"
                    "s transferring C1\n"
                    "t 330723101000 C1\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(index_follows_every_update, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
