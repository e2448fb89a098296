/*
 * sender.h — between webhook.c, on notify's loop thread (the store, the ready
 * index, what is due and what to record), and curlloop.c, the sender thread
 * (libcurl, signing, the sockets). They hand each other whole requests through
 * two queues; neither touches what the other owns.
 */
#ifndef CB_NT_SENDER_H
#define CB_NT_SENDER_H

#include "notify.h"

#include <curl/curl.h>
#include <uv.h>

/* One POST carrying one delivery, or a batch subscription's several. */
typedef struct nt_flight {
    /* Written by the loop thread before it is sent, read-only until it
     * comes back. */
    struct nt_lane *lane;
    char sub[NT_ID_MAX];
    char id[NT_ID_MAX];     /* the delivery's, or the batch's */
    char wid[NT_WID_MAX]; /* webhook-id: the source event and the subscription */
    char (*ids)[NT_ID_MAX]; /* the deliveries it carries */
    size_t nids;
    char *body; /* one CloudEvent, or a batch's array of them */
    size_t len;
    bool batch;
    /* url, secret, old secret, addressee, event id, type: one allocation */
    char *strings;
    const char *url, *secret, *old_secret, *org_id, *event_id, *type;
    int64_t old_until_ms;
    /* Written by the sender thread: the answer (status 0 when none came). */
    long status;
    char error[CURL_ERROR_SIZE + 200];
    uint64_t latency_ns;
    /* The sender thread's own while the request is out. */
    struct nt_pool *pool;
    CURL *easy;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    char blocked[160]; /* why the resolved address was refused, when it was */
    uint64_t started_ns;
    struct nt_flight *next;  /* the loop thread's lists */
    struct nt_flight *qnext; /* the queue it is in */
} nt_flight_t;

typedef struct nt_curl nt_curl_t;

/* Starts the sender thread; on_done runs on n's loop whenever answers are
 * waiting in nt_curl_done. */
int nt_curl_start(notify_t *n, void (*on_done)(void *ctx), void *ctx, nt_curl_t **out,
                  cb_error_t *err);
/* Hands f to the sender thread (loop thread). */
void nt_curl_send(nt_curl_t *c, nt_flight_t *f);
/* Every answered flight, oldest first (loop thread). */
nt_flight_t *nt_curl_done(nt_curl_t *c);
/* Stops and joins the sender thread: the flights it held are left with their
 * requests abandoned, for the loop thread to free. */
void nt_curl_stop(nt_curl_t *c);

#endif
