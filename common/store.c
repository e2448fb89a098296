/*
 * store.c — the LMDB environment of one daemon: directory, LOCK file, open
 * flags, named databases, transaction helpers and error mapping.
 *
 * Flags: MDB_NOTLS so that read transactions are not tied to a thread (a loop
 * may keep a reader open across callbacks while it also writes). Durability is
 * LMDB's default: every commit fsyncs data and meta pages.
 */
#include "store.h"
#include "bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct cb_store {
    MDB_env *env;
    char *dir;
    int lock_fd;
    size_t map_size;
    bool read_only;
};

int cb_store_error(int rc, const char *what, cb_error_t *err)
{
    switch (rc) {
    case MDB_SUCCESS: return 0;
    case MDB_NOTFOUND: return cb_error_set(err, CB_ERR_NOT_FOUND, "", "%s: not found", what);
    case MDB_KEYEXIST: return cb_error_set(err, CB_ERR_EXISTS, "", "%s: key exists", what);
    case MDB_MAP_FULL:
        return cb_error_set(err, CB_ERR_STORE_FULL, "",
                            "%s: the store is full (map_size reached); raise map_size in the "
                            "daemon's section and restart",
                            what);
    case MDB_TXN_FULL:
        return cb_error_set(err, CB_ERR_STORE_FULL, "", "%s: transaction too large", what);
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return cb_error_set(err, CB_ERR_CORRUPT, "", "%s: %s", what, mdb_strerror(rc));
    case ENOMEM: return cb_error_set(err, CB_ERR_NOMEM, "", "%s: out of memory", what);
    case ENOSPC:
        return cb_error_set(err, CB_ERR_STORE_FULL, "", "%s: no space left on the device", what);
    default: return cb_error_set(err, CB_ERR_STORE, "", "%s: %s", what, mdb_strerror(rc));
    }
}

static int take_lock(cb_store_t *s, cb_error_t *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/LOCK", s->dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0)
        return cb_error_set(err, -errno, "", "cannot open %s: %s", path, strerror(errno));
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(s->lock_fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(s->lock_fd);
        s->lock_fd = -1;
        if (e == EWOULDBLOCK)
            return cb_error_set(err, CB_ERR_LOCKED, "",
                                "data directory %s is held by another process (pid %s)", s->dir,
                                pid[0] ? pid : "unknown");
        return cb_error_set(err, -e, "", "cannot lock %s: %s", path, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(s->lock_fd, 0) != 0 || pwrite(s->lock_fd, pid, (size_t)n, 0) != n) {
        /* The pid is only for the message another process prints; not fatal. */
    }
    return 0;
}

int cb_store_open(cb_store_t **out, const cb_store_opts_t *opts, cb_error_t *err)
{
    int rc;
    cb_store_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    s->lock_fd = -1;
    s->read_only = opts->read_only;
    s->map_size = opts->map_size ? opts->map_size : (size_t)1 << 30;
    s->dir = strdup(opts->dir);
    if (s->dir == NULL) {
        rc = cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
        goto out_free;
    }
    if (!s->read_only && mkdir(s->dir, 0700) != 0 && errno != EEXIST) {
        rc = cb_error_set(err, -errno, "data_dir", "cannot create data directory %s: %s", s->dir,
                          strerror(errno));
        goto out_free;
    }
    if (!s->read_only && (rc = take_lock(s, err)) != 0)
        goto out_free;

    if ((rc = mdb_env_create(&s->env)) != 0) {
        rc = cb_store_error(rc, "create environment", err);
        goto out_unlock;
    }
    if ((rc = mdb_env_set_mapsize(s->env, s->map_size)) != 0 ||
        (rc = mdb_env_set_maxdbs(s->env, opts->max_dbs ? opts->max_dbs : 32)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, 256)) != 0) {
        rc = cb_store_error(rc, "configure environment", err);
        goto out_env;
    }
    unsigned flags = MDB_NOTLS | (s->read_only ? MDB_RDONLY : 0);
    if ((rc = mdb_env_open(s->env, s->dir, flags, 0600)) != 0) {
        if (rc == ENOENT)
            rc = cb_error_set(err, CB_ERR_NOT_FOUND, "data_dir", "no store in %s", s->dir);
        else
            rc = cb_store_error(rc, "open environment", err);
        goto out_env;
    }
    if (!s->read_only) {
        /* A reader left by a killed process pins old pages until cleared. */
        int dead = 0;
        mdb_reader_check(s->env, &dead);
    }
    *out = s;
    return 0;

out_env:
    mdb_env_close(s->env);
out_unlock:
    if (s->lock_fd >= 0)
        close(s->lock_fd);
out_free:
    free(s->dir);
    free(s);
    return rc;
}

void cb_store_destroy(cb_store_t **ps)
{
    cb_store_t *s = *ps;
    if (s == NULL)
        return;
    mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    free(s->dir);
    free(s);
    *ps = NULL;
}

MDB_env *cb_store_env(cb_store_t *s)
{
    return s->env;
}

const char *cb_store_dir(const cb_store_t *s)
{
    return s->dir;
}

size_t cb_store_map_size(const cb_store_t *s)
{
    return s->map_size;
}

size_t cb_store_used(const cb_store_t *s)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &st) != 0)
        return 0;
    return (info.me_last_pgno + 1) * (size_t)st.ms_psize;
}

int cb_store_dbi(cb_store_t *s, const char *name, unsigned flags, MDB_dbi *dbi, cb_error_t *err)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0, &txn);
    if (rc != 0)
        return cb_store_error(rc, "begin transaction to open database", err);
    rc = mdb_dbi_open(txn, name, flags | (s->read_only ? 0 : MDB_CREATE), dbi);
    if (rc != 0) {
        mdb_txn_abort(txn);
        char what[128];
        snprintf(what, sizeof(what), "open database %s", name);
        return cb_store_error(rc, what, err);
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return cb_store_error(rc, "commit database open", err);
    return 0;
}

int cb_store_begin(cb_store_t *s, bool write, MDB_txn **txn, cb_error_t *err)
{
    if (write && s->read_only)
        return cb_error_set(err, CB_ERR_STORE, "", "store %s is open read-only", s->dir);
    int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, txn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map (read-only openers): adopt its size. */
        if ((rc = mdb_env_set_mapsize(s->env, 0)) == 0)
            rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, txn);
    }
    if (rc != 0) {
        *txn = NULL;
        return cb_store_error(rc, write ? "begin write transaction" : "begin read transaction",
                              err);
    }
    return 0;
}

int cb_store_begin_child(cb_store_t *s, MDB_txn *parent, MDB_txn **txn, cb_error_t *err)
{
    int rc = mdb_txn_begin(s->env, parent, 0, txn);
    if (rc != 0) {
        *txn = NULL;
        return cb_store_error(rc, "begin child transaction", err);
    }
    return 0;
}

int cb_store_commit(MDB_txn **txn, cb_error_t *err)
{
    int rc = mdb_txn_commit(*txn);
    *txn = NULL;
    return cb_store_error(rc, "commit", err);
}

void cb_store_abort(MDB_txn **txn)
{
    if (*txn != NULL) {
        mdb_txn_abort(*txn);
        *txn = NULL;
    }
}

MDB_val cb_store_key(const char *s)
{
    MDB_val v = {strlen(s), (void *)s};
    return v;
}

int cb_store_put_msg(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, const ProtobufCMessage *msg,
                     const char *what, cb_error_t *err)
{
    MDB_val v = {protobuf_c_message_get_packed_size(msg), NULL};
    int rc = mdb_put(txn, dbi, k, &v, MDB_RESERVE);
    if (rc != 0)
        return cb_store_error(rc, what, err);
    protobuf_c_message_pack(msg, v.mv_data);
    return 0;
}

int cb_store_dbis(cb_store_t *s, const cb_store_dbi_spec_t *specs, size_t n, cb_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = cb_store_dbi(s, specs[i].name, 0, specs[i].dbi, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int cb_store_count_w(MDB_txn *txn, MDB_dbi dbi, const char *key, size_t width, uint64_t *out,
                     cb_error_t *err)
{
    MDB_val k = cb_store_key(key), v;
    uint64_t n = 0;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0 && v.mv_size == width)
        n = width == 4 ? cb_be32_get(v.mv_data) : cb_be64_get(v.mv_data);
    else if (rc != 0 && rc != MDB_NOTFOUND)
        return cb_store_error(rc, "read a counter", err);
    if (width == 4 && n == UINT32_MAX)
        return cb_error_set(err, CB_ERR_STORE_FULL, "", "counter %s is at its largest", key);
    uint8_t b[8];
    if (width == 4)
        cb_be32_put(b, (uint32_t)++n);
    else
        cb_be64_put(b, ++n);
    MDB_val nv = {width, b};
    if ((rc = mdb_put(txn, dbi, &k, &nv, 0)) != 0)
        return cb_store_error(rc, "store a counter", err);
    *out = n;
    return 0;
}

int cb_store_count(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t *out, cb_error_t *err)
{
    return cb_store_count_w(txn, dbi, key, 8, out, err);
}

int cb_store_load_msg(MDB_txn *txn, MDB_dbi dbi, const char *key,
                      const ProtobufCMessageDescriptor *desc, const char *what,
                      ProtobufCMessage **out, cb_error_t *err)
{
    MDB_val k = cb_store_key(key), v;
    *out = NULL;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0) {
        char doing[96];
        snprintf(doing, sizeof(doing), "read %s", what);
        return cb_store_error(rc, doing, err);
    }
    if ((*out = protobuf_c_message_unpack(desc, NULL, v.mv_size, v.mv_data)) == NULL)
        return cb_error_set(err, CB_ERR_CORRUPT, "", "stored %s does not decode", what);
    return 0;
}

void *cb_store_get_msg(MDB_txn *txn, MDB_dbi dbi, const char *key,
                       const ProtobufCMessageDescriptor *desc)
{
    MDB_val k, v;
    if (key == NULL || *key == '\0')
        return NULL;
    k = cb_store_key(key);
    if (mdb_get(txn, dbi, &k, &v) != 0)
        return NULL;
    return protobuf_c_message_unpack(desc, NULL, v.mv_size, v.mv_data);
}
