/*
 * state.c — every mdb_* call of router. Databases (besides the log's and the
 * bus cursors):
 *   meta       "orgs" -> OrgsImported (the registry in force)
 *              "orgs_version", "catalog_version" -> be32 last version given
 *   catalogs   be32 version -> CatalogImported
 *   cases      case_id -> JurisdictionResolved (the case summary and who is competent)
 *   transfers  transfer_id -> TransferRouted (the transfer as last routed, with its state)
 *   case_transfer  case_id -> transfer_id of the case's latest transfer (transfer_open)
 */
#include "router.h"
#include "bytes.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

int router_state_open(router_t *r, cb_error_t *err)
{
    const cb_store_dbi_spec_t dbis[] = {
        {"meta", &r->db_meta},
        {"catalogs", &r->db_catalogs},
        {"cases", &r->db_cases},
        {"transfers", &r->db_transfers},
        {"case_transfer", &r->db_case_transfer},
    };
    return cb_store_dbis(r->d.store, dbis, sizeof(dbis) / sizeof(dbis[0]), err);
}

int router_state_load(router_t *r, cb_error_t *err)
{
    MDB_txn *txn;
    int rc = cb_store_begin(r->d.store, false, &txn, err);
    if (rc != 0)
        return rc;
    ProtobufCMessage *m;
    if ((rc = cb_store_load_msg(txn, r->db_meta, "orgs", &casebus__v1__orgs_imported__descriptor,
                                "registry", &m, err)) != 0)
        goto out;
    if (m) {
        Casebus__V1__OrgsImported *oi = (Casebus__V1__OrgsImported *)m;
        router_registry_set_orgs(r->reg, &oi, err);
    }
    MDB_val k, v;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, r->db_catalogs, &cur)) != 0) {
        rc = cb_store_error(rc, "open catalogue cursor", err);
        goto out;
    }
    int mrc;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Casebus__V1__CatalogImported *ci =
            casebus__v1__catalog_imported__unpack(NULL, v.mv_size, v.mv_data);
        if (ci == NULL)
            rc = cb_error_set(err, CB_ERR_CORRUPT, "", "stored catalogue does not decode");
        else if ((rc = router_registry_add_catalog(r->reg, &ci, err)) != 0)
            casebus__v1__catalog_imported__free_unpacked(ci, NULL);
    }
    mdb_cursor_close(cur);
out:
    cb_store_abort(&txn);
    return rc;
}

int router_next_version(router_t *r, MDB_txn *txn, const char *which, uint32_t *version,
                        cb_error_t *err)
{
    uint64_t n;
    int rc = cb_store_count_w(txn, r->db_meta, which, 4, &n, err);
    if (rc == 0)
        *version = (uint32_t)n;
    return rc;
}

int router_orgs_put(router_t *r, MDB_txn *txn, const Casebus__V1__OrgsImported *oi, cb_error_t *err)
{
    MDB_val k = cb_store_key("orgs");
    return cb_store_put_msg(txn, r->db_meta, &k, &oi->base, "store registry", err);
}

int router_catalog_put(router_t *r, MDB_txn *txn, const Casebus__V1__CatalogImported *ci,
                       cb_error_t *err)
{
    uint8_t key[4];
    cb_be32_put(key, ci->version);
    MDB_val k = {4, key};
    return cb_store_put_msg(txn, r->db_catalogs, &k, &ci->base, "store catalogue", err);
}

Casebus__V1__JurisdictionResolved *router_case_get(router_t *r, MDB_txn *txn, const char *case_id)
{
    return cb_store_get_msg(txn, r->db_cases, case_id,
                            &casebus__v1__jurisdiction_resolved__descriptor);
}

int router_case_put(router_t *r, MDB_txn *txn, const Casebus__V1__JurisdictionResolved *j,
                    cb_error_t *err)
{
    MDB_val k = cb_store_key(j->case_->case_id);
    return cb_store_put_msg(txn, r->db_cases, &k, &j->base, "store case", err);
}

Casebus__V1__TransferRouted *router_transfer_get(router_t *r, MDB_txn *txn, const char *id)
{
    return cb_store_get_msg(txn, r->db_transfers, id, &casebus__v1__transfer_routed__descriptor);
}

int router_transfer_put(router_t *r, MDB_txn *txn, const Casebus__V1__TransferRouted *t,
                        cb_error_t *err)
{
    MDB_val k = cb_store_key(t->transfer_id);
    int rc = cb_store_put_msg(txn, r->db_transfers, &k, &t->base, "store transfer", err);
    if (rc != 0 || t->case_ == NULL || t->case_->case_id == NULL || *t->case_->case_id == '\0')
        return rc;
    MDB_val ck = cb_store_key(t->case_->case_id), cv = cb_store_key(t->transfer_id);
    if ((rc = mdb_put(txn, r->db_case_transfer, &ck, &cv, 0)) != 0)
        return cb_store_error(rc, "store the case's transfer", err);
    return 0;
}

Casebus__V1__TransferRouted *router_case_latest_transfer(router_t *r, MDB_txn *txn,
                                                         const char *case_id)
{
    MDB_val k = cb_store_key(case_id), v;
    char id[ROUTER_ID_MAX];
    if (case_id == NULL || *case_id == '\0' || mdb_get(txn, r->db_case_transfer, &k, &v) != 0 ||
        v.mv_size >= sizeof(id))
        return NULL;
    memcpy(id, v.mv_data, v.mv_size);
    id[v.mv_size] = '\0';
    return router_transfer_get(r, txn, id);
}
