/* test_pbjson.c — JSON into messages from their descriptors (pbjson.h) and the
 * contract's checks (contract.h): the API's spelling, refusals named by their
 * path, every missing field in one answer, and the decoder against the
 * encoder on random messages of every type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casebus/v1/intake.pb-c.h"
#include "cloudevent.h"
#include "jsonw.h"
#include "pbjson.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

/* Decodes text as md's body in the API's spelling and checks it. */
static int api_decode(const ProtobufCMessageDescriptor *md, const char *text,
                      ProtobufCMessage **out, cb_contract_report_t *rep)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &jerr);
    assert_non_null(j);
    cb_contract_report_init(rep);
    int rc = cb_pb_from_json(md, j, CB_PBJSON_API, out, rep);
    json_decref(j);
    if (rc == 0) {
        cb_contract_prepare(*out);
        rc = cb_contract_check(*out, rep);
    }
    return rc;
}

static void refused(const ProtobufCMessageDescriptor *md, const char *text, int code,
                    const char *field, const char *in_message)
{
    ProtobufCMessage *m = NULL;
    cb_contract_report_t rep;
    int rc = api_decode(md, text, &m, &rep);
    if (rc != code || strcmp(rep.err.field, field) != 0 ||
        (in_message && strstr(rep.err.message, in_message) == NULL))
        fail_msg("%s: got %d '%s' '%s', want %d '%s' (%s)", text, rc, rep.err.field,
                 rep.err.message, code, field, in_message ? in_message : "");
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

static void report_in_the_api_spelling(void **state)
{
    (void)state;
    ProtobufCMessage *m;
    cb_contract_report_t rep;
    const char *body =
        "{\"source\":\"citizen_report\",\"matter_code\":\"M1\",\"township_code\":\"330723101000\","
        "\"discovered_at\":\"2026-03-02T09:30:00+08:00\",\"discovered_by\":\"wy-scjg\","
        "\"description\":\"违法搭建\",\"location\":{\"address\":\"履坦街1号\",\"latitude\":28.9,"
        "\"longitude\":119.8},\"reporter\":{\"name\":\"张三\",\"anonymous\":false},"
        "\"attachments\":[{\"name\":\"a.jpg\",\"uri\":\"https://x/a\",\"sha256\":\""
        "abababababababababababababababababababababababababababababababab\"}]}";
    assert_int_equal(api_decode(&casebus__v1__case_reported__descriptor, body, &m, &rep), 0);
    Casebus__V1__CaseReported *r = (Casebus__V1__CaseReported *)m;
    assert_non_null(r->case_);
    assert_int_equal(r->case_->source, CASEBUS__V1__SOURCE_CHANNEL__SOURCE_CHANNEL_CITIZEN_REPORT);
    assert_string_equal(r->case_->matter_code, "M1");
    assert_string_equal(r->case_->discovered_by->org_id, "wy-scjg");
    assert_int_equal(r->case_->discovered_at_ms, INT64_C(1772415000000));
    assert_int_equal(r->case_->urgency, CASEBUS__V1__URGENCY__URGENCY_NORMAL); /* the default */
    assert_true(r->case_->location->latitude > 28.8);
    assert_string_equal(r->reporter->name, "张三");
    assert_int_equal(r->n_attachments, 1);
    assert_int_equal(r->attachments[0]->sha256.len, 32);
    assert_int_equal(r->attachments[0]->sha256.data[31], 0xab);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void refusals_name_the_path(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *ts = &casebus__v1__transfer_sent__descriptor;
    refused(ts,
            "{\"sender\":\"a\",\"materials\":[{\"kind\":\"other\",\"title\":\"t\"},"
            "{\"kind\":\"other\",\"colour\":\"red\"}]}",
            CB_ERR_INVALID, "materials[1].colour", "unknown field");
    refused(ts, "{\"sender\":\"a\",\"materials\":[{\"kind\":\"other\"},{\"kind\":\"blue\"}]}",
            CB_ERR_INVALID, "materials[1].kind", "transfer_letter");
    refused(ts, "{\"sender\":\"a\",\"materials\":[{\"kind\":\"unspecified\"}]}", CB_ERR_INVALID,
            "materials[0].kind", "not one of");
    refused(ts, "{\"sender\":{\"org_id\":\"a\"}}", CB_ERR_INVALID, "sender", "string");
    refused(ts, "{\"sender\":\"a\",\"transfer_id\":\"T1\"}", CB_ERR_INVALID, "transfer_id",
            "unknown field"); /* intake owns it */
    refused(ts, "{\"sender\":\"a\",\"approved_at_ms\":1}", CB_ERR_INVALID, "approved_at_ms",
            "unknown field");
    refused(ts, "{\"sender\":\"a\",\"approved_at\":\"yesterday\"}", CB_ERR_INVALID, "approved_at",
            NULL);
    refused(ts, "{\"sender\":\"a\",\"receiver\":7}", CB_ERR_INVALID, "receiver", "string");
    refused(ts, "{\"sender\":\"a\",\"reason\":\"x\\u0000y\"}", CB_ERR_INVALID, "reason", "NUL");
    const ProtobufCMessageDescriptor *xr = &casebus__v1__extension_requested__descriptor;
    refused(xr, "{\"by\":\"a\",\"reason\":\"r\",\"extra_length\":5000000000}", CB_ERR_INVALID,
            "extra_length", "out of range");
    refused(xr, "{\"by\":\"a\",\"reason\":\"r\",\"extra_length\":-1}", CB_ERR_INVALID,
            "extra_length", "out of range");
    refused(xr, "{\"by\":\"a\",\"reason\":\"r\",\"extra_length\":367}", CB_ERR_INVALID,
            "extra_length", "between 1 and 366");
    refused(xr, "{\"by\":\"a\",\"reason\":\"r\",\"extra_length\":2.5}", CB_ERR_INVALID,
            "extra_length", "integer");
    const ProtobufCMessageDescriptor *cr = &casebus__v1__case_reported__descriptor;
    refused(cr, "{\"attachments\":[{\"name\":\"a\",\"uri\":\"u\",\"sha256\":\"zz\"}]}",
            CB_ERR_INVALID, "attachments[0].sha256", "hexadecimal");
    refused(cr, "{\"location\":{\"latitude\":\"north\"}}", CB_ERR_INVALID, "location.latitude",
            "number");
    refused(cr, "{\"suspected_crime\":\"yes\"}", CB_ERR_INVALID, "suspected_crime",
            "true or false");
    refused(cr, "{\"matter_name\":\"x\"}", CB_ERR_INVALID, "matter_name", "unknown field");
}

static void every_missing_field_in_one_answer(void **state)
{
    (void)state;
    ProtobufCMessage *m = NULL;
    cb_contract_report_t rep;
    assert_int_equal(api_decode(&casebus__v1__case_reported__descriptor,
                                "{\"township_code\":\"330723101000\"}", &m, &rep),
                     CB_ERR_MISSING);
    const char *want[] = {"source", "matter_code", "discovered_at", "discovered_by", "description"};
    assert_int_equal(rep.nmissing, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(rep.missing[i], want[i]);
    assert_string_equal(rep.err.field, "source");
    assert_non_null(strstr(rep.err.message, "discovered_by, description"));
    protobuf_c_message_free_unpacked(m, NULL);
    /* a bool has no presence in proto3: the decoder names it */
    m = NULL;
    assert_int_equal(api_decode(&casebus__v1__return_reviewed__descriptor, "{}", &m, &rep),
                     CB_ERR_MISSING);
    assert_int_equal(rep.nmissing, 3);
    assert_string_equal(rep.missing[0], "approved");
    protobuf_c_message_free_unpacked(m, NULL);
    m = NULL;
    assert_int_equal(api_decode(&casebus__v1__return_reviewed__descriptor,
                                "{\"by\":\"a\",\"approved\":false,\"reason\":\"r\"}", &m, &rep),
                     0);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void limits_are_the_contracts(void **state)
{
    (void)state;
    char big[8100];
    memset(big, 'x', 8001);
    big[8001] = '\0';
    char body[8300];
    snprintf(body, sizeof(body),
             "{\"source\":\"patrol\",\"matter_code\":\"M1\",\"township_code\":\"330723101000\","
             "\"discovered_at\":\"2026-03-02T09:30:00+08:00\",\"discovered_by\":\"a\","
             "\"description\":\"%s\"}",
             big);
    refused(&casebus__v1__case_reported__descriptor, body, CB_ERR_INVALID, "description",
            "at most 8000 bytes");
    refused(&casebus__v1__case_dispatched__descriptor,
            "{\"by\":\"a\",\"lead\":\"b\",\"reason\":\"r\",\"helpers\":[\"1\",\"2\",\"3\",\"4\","
            "\"5\",\"6\",\"7\",\"8\",\"9\"]}",
            CB_ERR_INVALID, "helpers", "at most 8 entries");
    refused(&casebus__v1__case_dispatched__descriptor,
            "{\"by\":\"a\",\"lead\":\"b\",\"reason\":\"r\",\"helpers\":[\"1\", 2]}", CB_ERR_INVALID,
            "helpers[1]", "string");
    refused(&casebus__v1__case_reported__descriptor,
            "{\"attachments\":[{\"name\":\"a\",\"uri\":\"u\",\"sha256\":\"abab\"}]}",
            CB_ERR_MISSING, "source", NULL);
}

/* ---- the decoder against the encoder ---- */

static void fill(ProtobufCMessage *m, int depth);

static char *random_text(void)
{
    static const char *const pieces[] = {"a",      "Z", "\"", "\\", "\n", "\t", "\x01",
                                         "履坦镇", "é", "𝄞",  "{",  " ",  "0"};
    char s[96] = "";
    for (size_t i = 0, n = next() % 6; i < n; i++)
        strcat(s, pieces[next() % (sizeof(pieces) / sizeof(pieces[0]))]);
    return strdup(s);
}

static void random_value(const ProtobufCFieldDescriptor *f, void *dst, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: *(char **)dst = random_text(); return;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = dst;
        b->len = next() % 40;
        b->data = b->len ? malloc(b->len) : NULL;
        for (size_t i = 0; i < b->len; i++)
            b->data[i] = (uint8_t)next();
        return;
    }
    case PROTOBUF_C_TYPE_BOOL: *(protobuf_c_boolean *)dst = next() & 1; return;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        *(int *)dst = ed->values[next() % ed->n_values].value;
        return;
    }
    case PROTOBUF_C_TYPE_DOUBLE: *(double *)dst = (double)(int32_t)next() / 1024.0; return;
    case PROTOBUF_C_TYPE_FLOAT: *(float *)dst = (float)(int16_t)next() / 8.0f; return;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *md = f->descriptor;
        ProtobufCMessage *sub = malloc(md->sizeof_message);
        md->message_init(sub);
        fill(sub, depth + 1);
        *(ProtobufCMessage **)dst = sub;
        return;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)dst = (int64_t)(int32_t)next() * (1 << 20) + next();
        return;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)dst = ((uint64_t)next() << 30) ^ next(); /* below 2^63: JSON's integers */
        return;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: *(uint32_t *)dst = next() << 1 | (next() & 1); return;
    default: *(int32_t *)dst = (int32_t)(next() << 1); return;
    }
}

static void fill(ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *md = m->descriptor;
    uint8_t *base = (uint8_t *)m;
    unsigned oneof_pick = next();
    for (unsigned i = 0; i < md->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &md->fields[i];
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth > 3)
            continue;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
            if (*which || oneof_pick % md->n_fields != i) /* one member, or none */
                continue;
            *which = f->id;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = next() % 3;
            void *arr = n ? calloc(n, cb_pb_value_size(f)) : NULL;
            for (size_t k = 0; k < n; k++)
                random_value(f, (uint8_t *)arr + k * cb_pb_value_size(f), depth);
            *(void **)(base + f->offset) = arr;
            *(size_t *)(base + f->quantifier_offset) = n;
        } else if (f->type == PROTOBUF_C_TYPE_STRING) {
            char **s = (char **)(base + f->offset);
            *s = random_text();
        } else if (f->type != PROTOBUF_C_TYPE_MESSAGE || next() % 4 ||
                   (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
            random_value(f, base + f->offset, depth);
        }
    }
}

static const ProtobufCMessageDescriptor *const roots[] = {&casebus__v1__envelope__descriptor,
                                                          &casebus__v1__command__descriptor,
                                                          &casebus__v1__command_reply__descriptor};

static ProtobufCMessage *random_message(const ProtobufCMessageDescriptor *md)
{
    ProtobufCMessage *m = malloc(md->sizeof_message);
    md->message_init(m);
    fill(m, 0);
    return m;
}

static void decode_of_encode_is_the_same(void **state)
{
    (void)state;
    for (int round = 0; round < 3000; round++) {
        const ProtobufCMessageDescriptor *md = roots[round % 3];
        ProtobufCMessage *m = random_message(md);
        json_t *x = cb_pb_to_json(m);
        assert_non_null(x);
        ProtobufCMessage *back = NULL;
        cb_contract_report_t rep;
        cb_contract_report_init(&rep);
        if (cb_pb_from_json(md, x, 0, &back, &rep) != 0)
            fail_msg("round %d: %s: %s", round, rep.err.field, rep.err.message);
        json_t *y = cb_pb_to_json(back);
        if (!json_equal(x, y)) {
            char *a = json_dumps(x, JSON_SORT_KEYS), *b = json_dumps(y, JSON_SORT_KEYS);
            fail_msg("round %d:\n%s\n%s", round, a, b);
        }
        /* and the bytes on the wire */
        size_t n1 = protobuf_c_message_get_packed_size(m),
               n2 = protobuf_c_message_get_packed_size(back);
        assert_int_equal(n1, n2);
        uint8_t *p1 = malloc(n1 + 1), *p2 = malloc(n2 + 1);
        protobuf_c_message_pack(m, p1);
        protobuf_c_message_pack(back, p2);
        assert_memory_equal(p1, p2, n1);
        free(p1);
        free(p2);
        json_decref(x);
        json_decref(y);
        protobuf_c_message_free_unpacked(m, NULL);
        protobuf_c_message_free_unpacked(back, NULL);
    }
}

/* The event written straight as text is, byte for byte, the document made
 * and then written: masked and not, as a CloudEvent with notify's members at
 * its end. */
static void written_is_the_document(void **state)
{
    (void)state;
    cb_cloudevents_t ce = {.division_code = "330723", .type_prefix = "cn.gov.330723.casebus.v1"};
    const char *const extra[2][2] = {{"subscription", "S000001"}, {"addressee", "wy-\"lt\""}};
    cb_jsonw_t w = {0};
    for (int round = 0; round < 3000; round++) {
        Casebus__V1__Envelope *env =
            (Casebus__V1__Envelope *)random_message(&casebus__v1__envelope__descriptor);
        for (int show = 0; show < 2; show++) {
            json_t *doc = cb_envelope_to_cloudevent(env, show, &ce);
            for (size_t i = 0; i < 2; i++)
                json_object_set_new(doc, extra[i][0], json_string(extra[i][1]));
            char *want = cb_jsonw_dumps(doc);
            w.len = 0;
            assert_int_equal(cb_cloudevent_write(&w, env, show, &ce, extra, 2), 0);
            if (strlen(want) != w.len || memcmp(want, w.text, w.len) != 0)
                fail_msg("round %d show %d:\n%s\n%.*s", round, show, want, (int)w.len, w.text);
            free(want);
            json_decref(doc);
        }
        protobuf_c_message_free_unpacked(&env->base, NULL);
    }
    cb_jsonw_close(&w);
}

/* Bytes flipped in valid documents: refused or decoded, never a crash (ASan
 * and UBSan in the san build watch the memory). */
static void no_crash_on_any_input(void **state)
{
    (void)state;
    for (int round = 0; round < 3000; round++) {
        const ProtobufCMessageDescriptor *md = roots[round % 3];
        ProtobufCMessage *m = random_message(md);
        json_t *x = cb_pb_to_json(m);
        char *text = json_dumps(x, JSON_COMPACT);
        size_t len = strlen(text);
        for (int k = 0, flips = 1 + (int)(next() % 4); k < flips && len; k++)
            text[next() % len] = "{}[]:,\"0-e.ntfx\\ "[next() % 17];
        json_t *j = json_loadb(text, len, 0, NULL);
        for (unsigned flags = 0; j && flags <= CB_PBJSON_API; flags++) {
            ProtobufCMessage *back = NULL;
            cb_contract_report_t rep;
            cb_contract_report_init(&rep);
            if (cb_pb_from_json(md, j, flags, &back, &rep) == 0) {
                cb_contract_prepare(back);
                cb_contract_check(back, &rep);
                protobuf_c_message_free_unpacked(back, NULL);
            } else {
                assert_true(rep.err.message[0] != '\0');
            }
        }
        json_decref(j);
        free(text);
        json_decref(x);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(report_in_the_api_spelling),
        cmocka_unit_test(refusals_name_the_path),
        cmocka_unit_test(every_missing_field_in_one_answer),
        cmocka_unit_test(limits_are_the_contracts),
        cmocka_unit_test(decode_of_encode_is_the_same),
        cmocka_unit_test(written_is_the_document),
        cmocka_unit_test(no_crash_on_any_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
