/*
 * evlog.h — a daemon's event log (prefix cb_log_): the transactional outbox
 * every other daemon pulls from.
 *
 * Events are appended in the caller's write transaction, together with the
 * state change they describe, so an event exists if and only if its effect does.
 * Databases in the daemon's environment:
 *   log       be64 seq → record (a stored Envelope, see below)   MDB_APPEND order
 *   log_case  case_id → be64 seq (DUPSORT|DUPFIXED): every event of a case
 *   log_meta  "head" → be64 seq | be64 recorded_at_ms | hash[32]
 *             "producer" → the producer name the log was created with
 *
 * A record is an Envelope whose first bytes are its `hash` field (tag 0x0a,
 * length 0x20, 32 bytes); the rest ("body bytes") encode every other field,
 * prev_hash included. hash = SHA-256(prev_hash || body bytes). Sequences are
 * 1, 2, 3 … without gaps; recorded_at_ms never decreases.
 *
 * A log may be kept compressed (cb_log_compress): once it holds enough records,
 * a zstd dictionary is trained from them and kept in log_meta ("zdict"), and
 * later records are stored as zstd frames made with it (a frame starts with
 * zstd's magic number, a record with 0x0a). Every read gives back the record's
 * own bytes, so the hashes, the bus and every reader see the same records.
 */
#ifndef CB_EVLOG_H
#define CB_EVLOG_H

#include <lmdb.h>
#include <stdbool.h>
#include <stdint.h>

#include "casebus/v1/events.pb-c.h"
#include "error.h"
#include "store.h"

#define CB_HASH_LEN 32
#define CB_RECORD_PREFIX 2                          /* tag + length of the hash field */
#define CB_RECORD_BODY_OFF (CB_RECORD_PREFIX + CB_HASH_LEN)
#define CB_RECORD_MAX (4u << 20)                    /* a record of more is refused */
#define CB_CASE_ID_MAX 128

typedef struct cb_log cb_log_t;

typedef struct cb_log_head {
    uint64_t seq;              /* 0 for an empty log */
    int64_t recorded_at_ms;
    uint8_t hash[CB_HASH_LEN]; /* zeros for an empty log */
} cb_log_head_t;

/* Opens (creating) the log databases of store for producer ("router", …).
 * CB_ERR_CONFLICT when the store holds the log of another producer. */
int cb_log_open(cb_log_t **out, cb_store_t *store, const char *producer, cb_error_t *err);
void cb_log_destroy(cb_log_t **log);
const char *cb_log_producer(const cb_log_t *log);
cb_store_t *cb_log_store(cb_log_t *log);

/* Appends env in txn (a write transaction). The caller sets the body and
 * case_id; this sets producer, seq, event_id, recorded_at_ms, prev_hash and hash.
 * Those fields then point into memory of the log, valid until the next append.
 * Returns CB_ERR_TOO_LARGE, CB_ERR_INVALID (case_id too long), or a store error;
 * on failure the caller aborts txn. */
int cb_log_append(cb_log_t *log, MDB_txn *txn, Casebus__V1__Envelope *env, cb_error_t *err);

/* The head as seen by txn. */
int cb_log_head(cb_log_t *log, MDB_txn *txn, cb_log_head_t *head, cb_error_t *err);

/* Stores records from now on compressed, once the log holds train_at records
 * (the dictionary is trained from the last of them); 0 turns it off. Records
 * already stored stay as they are. */
void cb_log_compress(cb_log_t *log, uint64_t train_at);

/* The record at seq. *raw and *len are valid inside txn; when the record was
 * stored compressed, *raw is in *owned, which the caller frees (NULL
 * otherwise). CB_ERR_NOT_FOUND past the head. */
int cb_log_get(cb_log_t *log, MDB_txn *txn, uint64_t seq, const uint8_t **raw, size_t *len,
               uint8_t **owned, cb_error_t *err);

/* The first seq recorded at or after time_ms; head+1 when none is. */
int cb_log_seq_at_time(cb_log_t *log, MDB_txn *txn, int64_t time_ms, uint64_t *seq,
                       cb_error_t *err);

/* Calls visit(ctx, seq) for every event of case_id in sequence order; stops
 * early, returning visit's value, when it returns non-zero. */
typedef int (*cb_log_case_fn)(void *ctx, uint64_t seq);
int cb_log_case_seqs(cb_log_t *log, MDB_txn *txn, const char *case_id, cb_log_case_fn visit,
                     void *ctx, cb_error_t *err);

/* Walks the whole log and checks the hash chain, the sequence numbers and the
 * head. Returns 0, or CB_ERR_CHAIN with *bad_seq the first broken record. */
int cb_log_verify(cb_log_t *log, MDB_txn *txn, uint64_t *bad_seq, uint64_t *checked,
                  cb_error_t *err);

/* Record checks, for every reader of records (consumers, tail, verify).
 * cb_record_check: the record is well-formed, its hash covers its body bytes
 * chained to prev_hash (NULL: don't check the link), and, when env_out is not
 * NULL, decodes it (free with casebus__v1__envelope__free_unpacked). */
int cb_record_check(const uint8_t *raw, size_t len, const uint8_t *prev_hash,
                    Casebus__V1__Envelope **env_out, cb_error_t *err);
/* The record's own hash (32 bytes inside raw); NULL when malformed. */
const uint8_t *cb_record_hash(const uint8_t *raw, size_t len);

/* The name of an envelope's body ("case_reported", …); "unknown" when unset. */
const char *cb_event_type(const Casebus__V1__Envelope *env);
/* Whether name is an event type (a body of the Envelope), e.g. "transfer_routed". */
bool cb_event_type_known(const char *name);

#endif
