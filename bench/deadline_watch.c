/*
 * deadline_watch — reads deadline's log over the bus (as notify or `casebus
 * tail` would) from FROM_SEQ until COUNT DeadlineBreached events have arrived,
 * and prints their lateness: recorded (fired) minus due, and received by this
 * reader minus due; with the span from the first due instant to the last fired.
 *
 *   deadline_watch ENDPOINT FROM_SEQ COUNT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "casebus/v1/bus.pb-c.h"
#include "casebus/v1/events.pb-c.h"
#include "cbtime.h"

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, int64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp);
    printf("%s p50=%lld p99=%lld max=%lld ms\n", what, (long long)v[n / 2],
           (long long)v[n * 99 / 100], (long long)v[n - 1]);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: deadline_watch ENDPOINT FROM_SEQ COUNT\n");
        return 2;
    }
    uint64_t next = strtoull(argv[2], NULL, 10);
    size_t want = strtoull(argv[3], NULL, 10), n = 0;
    int64_t *fired = malloc(want * sizeof(int64_t)), *seen = malloc(want * sizeof(int64_t));
    int64_t first_due = 0, last_fired = 0;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    if (fired == NULL || seen == NULL || zmq_connect(s, argv[1]) != 0)
        return 1;
    uint64_t rid = 0;
    while (n < want) {
        Casebus__V1__Fetch f = CASEBUS__V1__FETCH__INIT;
        f.request_id = ++rid;
        f.from_seq = next;
        f.max_events = 1000;
        f.max_wait_ms = 2000;
        Casebus__V1__BusRequest req = CASEBUS__V1__BUS_REQUEST__INIT;
        req.kind_case = CASEBUS__V1__BUS_REQUEST__KIND_FETCH;
        req.fetch = &f;
        uint8_t buf[128];
        size_t len = casebus__v1__bus_request__pack(&req, buf);
        if (zmq_send(s, buf, len, 0) < 0)
            return 1;
        zmq_msg_t m;
        int more = 1, first = 1;
        while (more) {
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, s, 0) < 0)
                return 1;
            more = zmq_msg_more(&m);
            if (!first) {
                int64_t now = cb_now_ms();
                Casebus__V1__Envelope *e =
                    casebus__v1__envelope__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
                if (e) {
                    next = e->seq + 1;
                    if (e->body_case == CASEBUS__V1__ENVELOPE__BODY_DEADLINE_BREACHED && n < want) {
                        int64_t due = e->deadline_breached->alert->fire_at_ms;
                        fired[n] = e->recorded_at_ms - due;
                        seen[n] = now - due;
                        if (first_due == 0 || due < first_due)
                            first_due = due;
                        if (e->recorded_at_ms > last_fired)
                            last_fired = e->recorded_at_ms;
                        n++;
                    }
                    casebus__v1__envelope__free_unpacked(e, NULL);
                }
            }
            first = 0;
            zmq_msg_close(&m);
        }
    }
    report("lateness fired-due    ", fired, n);
    report("lateness received-due ", seen, n);
    printf("span first due -> last fired = %lld ms for %zu breaches\n",
           (long long)(last_fired - first_due), n);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
