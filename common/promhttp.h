/*
 * promhttp.h — a daemon's own small HTTP listener (`metrics_listen = HOST:PORT`
 * in its section): GET /metrics (Prometheus text format 0.0.4) and GET /healthz
 * (JSON; 200 when healthy, 503 with a reason otherwise), which is what
 * Prometheus scrapers and Kubernetes probes expect. One request per connection,
 * answered from the loop; anything else gets 404 or 405.
 */
#ifndef CB_PROMHTTP_H
#define CB_PROMHTTP_H

#include "daemon.h"
#include "error.h"

typedef struct cb_promhttp cb_promhttp_t;

/* Binds [section] metrics_listen when the daemon's section has it (else does
 * nothing and *out stays NULL). Errors name the key. */
int cb_promhttp_start(cb_promhttp_t **out, cb_daemon_t *d, cb_error_t *err);
/* Stops listening and drops open connections; *p becomes NULL. */
void cb_promhttp_stop(cb_promhttp_t **p);

/* "HOST:PORT" or "[V6]:PORT" into a socket address; -1 when it is not one. */
int cb_listen_addr(const char *text, struct sockaddr_storage *addr);

#endif
