/*
 * store.h — one LMDB environment per daemon, in its own data directory, held
 * exclusively by one live process (a LOCK file with flock; the kernel releases
 * it when the process dies, even by SIGKILL).
 *
 * Write transactions are short and fsync on commit (LMDB's default durability:
 * no MDB_NOSYNC, no MDB_NOMETASYNC). Every LMDB failure comes back as a CB_ERR_*
 * with a message; MDB_MAP_FULL becomes CB_ERR_STORE_FULL naming the map size.
 * This module never aborts the process.
 */
#ifndef CB_STORE_H
#define CB_STORE_H

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

#include "error.h"

typedef struct cb_store cb_store_t;

typedef struct cb_store_opts {
    const char *dir;  /* created (0700) when absent */
    size_t map_size;  /* bytes; 0 = 1 GiB */
    unsigned max_dbs; /* named databases; 0 = 32 */
    bool read_only;   /* readers (CLI, checks): no LOCK, no writes */
} cb_store_opts_t;

/* Opens (creating) the environment. CB_ERR_LOCKED when another live process
 * holds the directory, with its pid in the message. */
int cb_store_open(cb_store_t **out, const cb_store_opts_t *opts, cb_error_t *err);
void cb_store_destroy(cb_store_t **store);

MDB_env *cb_store_env(cb_store_t *store);
const char *cb_store_dir(const cb_store_t *store);
size_t cb_store_map_size(const cb_store_t *store);
/* Bytes of the map in use (up to the last page ever written; LMDB reuses freed
 * pages below it). */
size_t cb_store_used(const cb_store_t *store);

/* Opens a named database (creating it unless read-only) in a transaction of its
 * own. Call at start-up, before other transactions. */
int cb_store_dbi(cb_store_t *store, const char *name, unsigned flags, MDB_dbi *dbi,
                 cb_error_t *err);

int cb_store_begin(cb_store_t *store, bool write, MDB_txn **txn, cb_error_t *err);
/* Begins a child of a write transaction: its changes join the parent's on
 * commit, or vanish on abort (one command's work inside a group commit). */
int cb_store_begin_child(cb_store_t *store, MDB_txn *parent, MDB_txn **txn, cb_error_t *err);
/* Commits and sets *txn to NULL, whatever the outcome (LMDB frees a transaction
 * whose commit failed). */
int cb_store_commit(MDB_txn **txn, cb_error_t *err);
/* Aborts and sets *txn to NULL; safe on NULL. */
void cb_store_abort(MDB_txn **txn);

/* Maps an LMDB return code to a CB_ERR_* with a message that says what was
 * being done ("put log record"). MDB_SUCCESS → 0. */
int cb_store_error(int mdb_rc, const char *what, cb_error_t *err);

/* A daemon's named databases, opened (created) together. */
typedef struct cb_store_dbi_spec {
    const char *name;
    MDB_dbi *dbi;
} cb_store_dbi_spec_t;
int cb_store_dbis(cb_store_t *store, const cb_store_dbi_spec_t *specs, size_t n, cb_error_t *err);

/* Adds one to the 8-byte big-endian counter under key in dbi (0 when absent)
 * and gives the new value. */
int cb_store_count(MDB_txn *txn, MDB_dbi dbi, const char *key, uint64_t *out, cb_error_t *err);
/* The same with a counter of width 4 or 8 bytes. */
int cb_store_count_w(MDB_txn *txn, MDB_dbi dbi, const char *key, size_t width, uint64_t *out,
                     cb_error_t *err);

/* A C string as a key (its bytes, without the NUL). */
MDB_val cb_store_key(const char *s);
/* Packs msg into key k of dbi in place (MDB_RESERVE); errors name `what`. */
int cb_store_put_msg(MDB_txn *txn, MDB_dbi dbi, MDB_val *k, const ProtobufCMessage *msg,
                     const char *what, cb_error_t *err);

/* The message of type desc under the C-string key of dbi. Absent: 0 with *out
 * NULL. A value that does not unpack: CB_ERR_CORRUPT "stored WHAT does not
 * decode"; a read error names "read WHAT". Free *out with
 * protobuf_c_message_free_unpacked. */
int cb_store_load_msg(MDB_txn *txn, MDB_dbi dbi, const char *key,
                      const ProtobufCMessageDescriptor *desc, const char *what,
                      ProtobufCMessage **out, cb_error_t *err);
/* The same for a lookup where an empty or NULL key, an absent one and one that
 * does not unpack all mean "none": the message, or NULL. */
void *cb_store_get_msg(MDB_txn *txn, MDB_dbi dbi, const char *key,
                       const ProtobufCMessageDescriptor *desc);

#endif
