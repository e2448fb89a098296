/*
 * intake_zmq — load client for intake's ZeroMQ door (used by bench/intake.sh).
 * One DEALER keeps WINDOW commands in flight; each reply is matched by its
 * request id to its send time. Prints one line:
 *   zmq_door commands=N ok=N per_s=X p50_ms=X p99_ms=X
 *
 *   intake_zmq ENDPOINT TOKEN TOTAL WINDOW
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "casebus/v1/intake.pb-c.h"
#include "cbtime.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: intake_zmq ENDPOINT TOKEN TOTAL WINDOW\n");
        return 2;
    }
    uint64_t total = strtoull(argv[3], NULL, 10), window = strtoull(argv[4], NULL, 10);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, hwm = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    if (zmq_connect(s, argv[1]) != 0) {
        fprintf(stderr, "connect %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }
    uint64_t *sent = calloc(total, sizeof(uint64_t)), *lat = calloc(total, sizeof(uint64_t));
    Casebus__V1__OrgRef by = CASEBUS__V1__ORG_REF__INIT;
    by.org_id = "wy-scjg";
    Casebus__V1__CaseSummary c = CASEBUS__V1__CASE_SUMMARY__INIT;
    c.source = CASEBUS__V1__SOURCE_CHANNEL__SOURCE_CHANNEL_PATROL;
    c.matter_code = "330217001";
    c.township_code = "330723101000";
    c.discovered_at_ms = cb_now_ms() - 3600 * 1000;
    c.discovered_by = &by;
    c.urgency = CASEBUS__V1__URGENCY__URGENCY_NORMAL;
    c.description = "巡查发现沿街店铺占道经营，影响通行，现场已拍照取证，需要依法处理。";
    Casebus__V1__CaseReported r = CASEBUS__V1__CASE_REPORTED__INIT;
    r.case_ = &c;
    Casebus__V1__Command cmd = CASEBUS__V1__COMMAND__INIT;
    cmd.token = argv[2];
    cmd.kind_case = CASEBUS__V1__COMMAND__KIND_REPORT_CASE;
    cmd.report_case = &r;
    char rid[24];
    cmd.request_id = rid;
    uint8_t buf[4096];
    uint64_t next = 0, done = 0, ok = 0, start = cb_mono_ns();
    while (done < total) {
        while (next < total && next - done < window) {
            snprintf(rid, sizeof(rid), "%llu", (unsigned long long)next);
            size_t len = casebus__v1__command__pack(&cmd, buf);
            sent[next++] = cb_mono_ns();
            zmq_send(s, buf, len, 0);
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, 0) < 0)
            break;
        Casebus__V1__CommandReply *rep =
            casebus__v1__command_reply__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
        if (rep) {
            uint64_t i = strtoull(rep->request_id, NULL, 10);
            if (i < total)
                lat[done] = cb_mono_ns() - sent[i];
            if (rep->status == 201)
                ok++;
            casebus__v1__command_reply__free_unpacked(rep, NULL);
        }
        zmq_msg_close(&m);
        done++;
    }
    double secs = (double)(cb_mono_ns() - start) / 1e9;
    qsort(lat, done, sizeof(uint64_t), cmp_u64);
    printf("zmq_door commands=%llu ok=%llu per_s=%.0f p50_ms=%.2f p99_ms=%.2f\n",
           (unsigned long long)done, (unsigned long long)ok, (double)done / secs,
           (double)lat[done / 2] / 1e6, (double)lat[done * 99 / 100] / 1e6);
    zmq_close(s);
    zmq_ctx_term(ctx);
    free(sent);
    free(lat);
    return ok == total ? 0 : 1;
}
