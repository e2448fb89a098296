/*
 * e2e_gen — an open-loop load generator for bench/e2e.sh: POSTs one body to
 * intake at a fixed rate whatever the answers do (request i is due at
 * start + i/RATE s; a late answer does not delay the next request, so queueing
 * shows in the latency instead of being hidden by it), over kept-alive
 * connections (libcurl multi). For each request it writes a line to OUT:
 *
 *   CASE_ID DUE_US ANSWERED_US STATUS
 *
 * (wall clock in microseconds; CASE_ID "-" when the answer named none). A
 * request that could not be sent when due because MAX_INFLIGHT were open is
 * sent as soon as one closes and counted as behind; latency is still from its
 * due time.
 *
 *   e2e_gen URL TOKEN BODY_FILE RATE SECONDS OUT [MAX_INFLIGHT]
 * prints: sent N answered N non201 N behind N
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

typedef struct request {
    CURL *easy;
    long long due_us;
    char answer[512];
    size_t len;
} request_t;

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    request_t *r = arg;
    size_t take = size * n;
    if (take > sizeof(r->answer) - 1 - r->len)
        take = sizeof(r->answer) - 1 - r->len;
    memcpy(r->answer + r->len, data, take);
    r->len += take;
    r->answer[r->len] = '\0';
    return size * n;
}

static void case_id_of(const char *answer, char *out, size_t cap)
{
    const char *p = strstr(answer, "\"case_id\":\"");
    snprintf(out, cap, "-");
    if (p == NULL)
        return;
    p += 11;
    const char *q = strchr(p, '"');
    if (q && (size_t)(q - p) < cap)
        snprintf(out, cap, "%.*s", (int)(q - p), p);
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: e2e_gen URL TOKEN BODY_FILE RATE SECONDS OUT [MAX_INFLIGHT]\n");
        return 2;
    }
    const char *url = argv[1], *body = tu_slurp(argv[3], NULL);
    double rate = atof(argv[4]);
    long total = (long)(rate * atof(argv[5]));
    int max_inflight = argc > 7 ? atoi(argv[7]) : 256;
    FILE *out = fopen(argv[6], "w");
    if (body == NULL || out == NULL || rate <= 0 || total <= 0 || max_inflight <= 0) {
        fprintf(stderr, "e2e_gen: cannot read %s or write %s, or a number is not positive\n",
                argv[3], argv[6]);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    char auth[1024];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", argv[2]);
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, auth);
    headers = curl_slist_append(headers, "Expect:");
    CURLM *multi = curl_multi_init();
    request_t *reqs = calloc((size_t)max_inflight, sizeof(*reqs));
    request_t **free_reqs = calloc((size_t)max_inflight, sizeof(*free_reqs));
    if (headers == NULL || multi == NULL || reqs == NULL || free_reqs == NULL)
        return 1;
    int nfree = 0;
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max_inflight);
    for (int i = 0; i < max_inflight; i++) {
        CURL *e = curl_easy_init();
        if (e == NULL)
            return 1;
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &reqs[i]);
        curl_easy_setopt(e, CURLOPT_PRIVATE, &reqs[i]);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        reqs[i].easy = e;
        free_reqs[nfree++] = &reqs[max_inflight - 1 - i];
    }
    long sent = 0, answered = 0, non201 = 0, behind = 0;
    int inflight = 0;
    long long start = now_us() + 10000;
    while (sent < total || inflight > 0) {
        long long now = now_us();
        while (sent < total && start + (long long)(sent * 1e6 / rate) <= now) {
            if (nfree == 0) {
                behind++;
                break;
            }
            request_t *r = free_reqs[--nfree];
            r->len = 0;
            r->answer[0] = '\0';
            r->due_us = start + (long long)(sent * 1e6 / rate);
            if (curl_multi_add_handle(multi, r->easy) != CURLM_OK) {
                fprintf(stderr, "e2e_gen: cannot add a request\n");
                return 1;
            }
            inflight++;
            sent++;
        }
        int running;
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            request_t *r;
            long status = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            char id[128];
            case_id_of(r->answer, id, sizeof(id));
            fprintf(out, "%s %lld %lld %ld\n", id, r->due_us, now_us(), status);
            answered += status != 0;
            non201 += status != 201;
            curl_multi_remove_handle(multi, m->easy_handle);
            free_reqs[nfree++] = r;
            inflight--;
        }
        /* Sleeps until the next is due, rounded up to curl's milliseconds:
         * rounding down would spin and take a core from the system measured. */
        long long next = sent < total ? start + (long long)(sent * 1e6 / rate) : now_us() + 5000;
        long long wait = (next - now_us() + 999) / 1000;
        curl_multi_poll(multi, NULL, 0, wait < 0 ? 0 : wait > 5 ? 5 : (int)wait, NULL);
    }
    fclose(out);
    printf("sent %ld answered %ld non201 %ld behind %ld\n", sent, answered, non201, behind);
    for (int i = 0; i < max_inflight; i++)
        curl_easy_cleanup(reqs[i].easy);
    curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    free(reqs);
    free(free_reqs);
    curl_global_cleanup();
    free((char *)body);
    return 0;
}
