/*
 * view.c — the case view (GET /v1/cases/{id}): the JSON document each case
 * keeps, its timeline, and who may read it with which personal data masked.
 */
#include "intake.h"
#include "command.h"
#include "pbjson.h"
#include "routes.h"
#include "jsonw.h"
#include "cbtime.h"
#include "codes.h"
#include "log.h"
#include "orgs.h"
#include "utf8.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *intake_json_org(const Casebus__V1__OrgRef *r)
{
    if (r == NULL || intake_str_empty(r->org_id))
        return json_null();
    char kind[ENUM_WORD_MAX];
    return json_pack(
        "{s:s,s:s,s:s}", "org_id", r->org_id, "name", r->name ? r->name : "", "kind",
        cb_pb_enum_word(&casebus__v1__org_kind__descriptor, r->kind, kind, ENUM_WORD_MAX));
}

int intake_timeline_event(intake_t *in, MDB_txn *txn, const char *case_id, const char *producer,
                          uint64_t seq, int64_t at, const char *event, const char *summary,
                          cb_error_t *err)
{
    char text[1024]; /* summaries are made with snprintf: the cut may split a character */
    cb_utf8_copy(text, sizeof(text), summary);
    json_t *e = json_pack("{s:o,s:s,s:I,s:s,s:s}", "at", intake_json_time(at), "producer", producer,
                          "seq", (json_int_t)seq, "event", event, "summary", text);
    if (e == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    int rc = intake_timeline_add(&in->st, txn, case_id, e, err);
    json_decref(e);
    return rc;
}

/* Names org as a party of the case (an assistance addressee, a department
 * fed back to): it may then read the case. Stores the view. */
int intake_view_add_party(intake_t *in, MDB_txn *txn, const char *case_id, json_t *view,
                          const char *org, cb_error_t *err)
{
    json_t *ps = json_object_get(view, "parties");
    if (!json_is_array(ps)) {
        ps = json_array();
        if (ps == NULL || json_object_set_new(view, "parties", ps) != 0)
            return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    }
    size_t i;
    json_t *p;
    json_array_foreach(ps, i, p)
    {
        if (strcmp(json_string_value(p) ? json_string_value(p) : "", org) == 0)
            return 0;
    }
    if (json_array_append_new(ps, json_string(org)) != 0)
        return cb_error_set(err, CB_ERR_NOMEM, "", "out of memory");
    return intake_case_put(&in->st, txn, case_id, view, err);
}

/* A case is read by the organisations with a role in it and by operators. */
static bool involved(intake_t *in, MDB_txn *txn, json_t *view, const intake_actor_t *actor)
{
    if (actor->operator_)
        return true;
    const char *orgs[INTAKE_MAX_TOKEN_ORGS];
    int kinds[INTAKE_MAX_TOKEN_ORGS];
    for (size_t i = 0; i < actor->norgs; i++) {
        Casebus__V1__Organisation *o = intake_org_get(&in->st, txn, actor->orgs[i]);
        orgs[i] = actor->orgs[i];
        kinds[i] = o ? (int)o->kind : 0;
        if (o)
            casebus__v1__organisation__free_unpacked(o, NULL);
    }
    intake_facts_t facts;
    intake_facts_of(view, NULL, NULL, &facts);
    return intake_may_read(&facts, orgs, kinds, actor->norgs);
}

static void mask(json_t *rep, const char *key, size_t keep_head, size_t keep_tail)
{
    const char *v = json_string_value(json_object_get(rep, key));
    if (v == NULL || *v == '\0')
        return;
    size_t n = strlen(v);
    char out[64];
    size_t j = 0;
    for (size_t i = 0; i < n && j < sizeof(out) - 1; i++)
        out[j++] = (i < keep_head || i + keep_tail >= n) ? v[i] : '*';
    out[j] = '\0';
    json_object_set_new(rep, key, json_string(out));
}

void intake_case_view(intake_t *in, MDB_txn *txn, const char *case_id, const intake_actor_t *actor,
                      intake_reply_t *reply)
{
    memset(reply, 0, sizeof(*reply));
    json_t *view = intake_case_or_404(in, txn, case_id, reply);
    if (view == NULL)
        return;
    if (!involved(in, txn, view, actor)) {
        json_decref(view);
        intake_reply_no_case(reply, case_id); /* the very answer an unknown case gets */
        return;
    }
    /* Personal data of the reporter: shown in full to the discovering
     * organisation and operators, masked for everyone else. */
    const char *disc =
        json_string_value(json_object_get(json_object_get(view, "discovered_by"), "org_id"));
    json_t *rep = json_object_get(view, "reporter");
    if (rep && !actor->operator_ && !(disc && intake_acts_for(actor, disc))) {
        mask(rep, "name", 0, 0);
        mask(rep, "phone", 3, 4);
        mask(rep, "id_number", 0, 0);
    }
    json_t *party = json_object_get(view, "party");
    if (party && json_is_true(json_object_get(party, "is_person")) && !actor->operator_ &&
        !(disc && intake_acts_for(actor, disc)))
        mask(party, "name", 0, 0);
    json_object_set_new(view, "timeline", intake_timeline_get(&in->st, txn, case_id));
    reply->status = 200;
    reply->body = cb_jsonw_dumps(view);
    json_decref(view);
}
