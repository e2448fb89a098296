/* test_store.c — the LMDB environment: creation, exclusive lock, full map, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>
#include <sys/stat.h>

#include "store.h"
#include "testutil.h"

static void opens_creates_directory_and_refuses_second_holder(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("store");
    char path[4200];
    snprintf(path, sizeof(path), "%s/data", dir);
    cb_store_opts_t opts = {.dir = path, .map_size = 1 << 20};
    cb_store_t *a = NULL, *b = NULL;
    cb_error_t err;
    assert_int_equal(cb_store_open(&a, &opts, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    assert_int_equal(cb_store_open(&b, &opts, &err), CB_ERR_LOCKED);
    assert_null(b);
    assert_non_null(strstr(err.message, "held by another process"));

    /* A read-only opener (CLI, checks) is allowed beside the holder. */
    cb_store_opts_t ro = {.dir = path, .read_only = true};
    assert_int_equal(cb_store_open(&b, &ro, &err), 0);
    cb_store_destroy(&b);

    cb_store_destroy(&a);
    assert_null(a);
    /* Once released, the directory can be taken again. */
    assert_int_equal(cb_store_open(&a, &opts, &err), 0);
    cb_store_destroy(&a);
    tu_rmtree(&dir);
}

static void full_map_is_a_clear_error_not_an_abort(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("store");
    cb_store_opts_t opts = {.dir = dir, .map_size = 256 << 10};
    cb_store_t *s = NULL;
    cb_error_t err;
    assert_int_equal(cb_store_open(&s, &opts, &err), 0);
    MDB_dbi dbi;
    assert_int_equal(cb_store_dbi(s, "things", 0, &dbi, &err), 0);
    MDB_txn *txn;
    assert_int_equal(cb_store_begin(s, true, &txn, &err), 0);
    char value[1000];
    memset(value, 'x', sizeof(value));
    int rc = 0;
    for (int i = 0; i < 10000 && rc == 0; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%06d", i);
        MDB_val k = {strlen(key), key}, v = {sizeof(value), value};
        rc = cb_store_error(mdb_put(txn, dbi, &k, &v, 0), "put thing", &err);
    }
    assert_int_equal(rc, CB_ERR_STORE_FULL);
    assert_non_null(strstr(err.message, "map_size"));
    cb_store_abort(&txn);
    assert_null(txn);

    /* Nothing of the aborted transaction is there; the store still works. */
    assert_int_equal(cb_store_begin(s, true, &txn, &err), 0);
    MDB_stat st;
    mdb_stat(txn, dbi, &st);
    assert_int_equal(st.ms_entries, 0);
    MDB_val k = {1, "a"}, v = {1, "b"};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(cb_store_commit(&txn, &err), 0);
    cb_store_destroy(&s);
    tu_rmtree(&dir);
}

static void read_only_open_of_missing_store_is_not_found(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("store");
    char path[4200];
    snprintf(path, sizeof(path), "%s/nothing-here", dir);
    cb_store_opts_t ro = {.dir = path, .read_only = true};
    cb_store_t *s = NULL;
    cb_error_t err;
    assert_true(cb_store_open(&s, &ro, &err) < 0);
    assert_null(s);
    tu_rmtree(&dir);
}

static void error_mapping_names_what_failed(void **state)
{
    (void)state;
    cb_error_t err;
    assert_int_equal(cb_store_error(MDB_NOTFOUND, "read x", &err), CB_ERR_NOT_FOUND);
    assert_string_equal(err.message, "read x: not found");
    assert_int_equal(cb_store_error(MDB_CORRUPTED, "read y", &err), CB_ERR_CORRUPT);
    assert_int_equal(cb_store_error(0, "z", &err), 0);
    assert_string_equal(cb_strerror(CB_ERR_STORE_FULL), "store_full");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(opens_creates_directory_and_refuses_second_holder),
        cmocka_unit_test(full_map_is_a_clear_error_not_an_abort),
        cmocka_unit_test(read_only_open_of_missing_store_is_not_found),
        cmocka_unit_test(error_mapping_names_what_failed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
