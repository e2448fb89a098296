/*
 * board.c — the command hall's board (指挥大屏), served by intake:
 *   GET  /board              the page (deploy/board/, board_dir), or its login form
 *   GET  /board?token=T      signs in with T, sets the cookie, sends the browser on to
 *                            /board (the token leaves the address bar at once)
 *   POST /board/login        the login form (token=T): the same
 *   POST /board/logout       forgets the cookie
 *   GET  /board/board.js|.css  the page's script and style
 *   GET  /v1/board           one snapshot (JSON)
 *   GET  /v1/board/stream    Server-Sent Events: a snapshot on connect and on every change
 * Who may look: operator tokens, and tokens of the command platform (the
 * enforcement bureau) or the leading-group office, who supervise every case.
 * The token travels in the Authorization header or the HttpOnly cookie
 * cb_board; intake logs no request lines, so it is never written down.
 *
 * A snapshot: per township and per county department a light (red when a limit
 * it answers for has passed, yellow when one is warned, else green) with its
 * counts; the overdue list, most late first; the cases reported today. Each
 * event of the stream is a whole snapshot, with id "<intake start>.<changes>":
 * a browser reconnecting with the Last-Event-ID it already shows gets nothing
 * until the next change; after a restart of intake it gets the board at once.
 */
#include "http.h"
#include "jsonw.h"
#include "cbtime.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS 500
#define HEARTBEAT_MS 15000
#define OVERDUE_SHOWN 30
#define TODAY_SHOWN 12
#define COOKIE "cb_board"
#define FILE_MAX (512 * 1024)

typedef struct board_file {
    const char *name, *type;
    char *body;
    size_t len;
} board_file_t;

typedef struct sse_client {
    h2o_generator_t gen; /* first: h2o hands it back */
    h2o_req_t *req;
    struct intake_board *board;
    struct sse_client *prev, *next;
    char *sending, *pending; /* in h2o's hands until proceed; the next to send */
    size_t sending_len, pending_len;
    bool busy, closed, final;
} sse_client_t;

typedef struct intake_board {
    intake_http_t *http;
    board_file_t files[4];
    bool installed;
    uv_timer_t timer;
    sse_client_t *clients;
    size_t nclients;
    int64_t boot_ms;
    uint64_t sent_changes;
    bool unsettled; /* the last snapshot was read while writes were on their way */
    int64_t sent_day, last_beat_ms;
    char *snapshot; /* the last one built, for new streams */
    char id[48];
} intake_board_t;

/* ---- files ---- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc(FILE_MAX);
    size_t n = buf ? fread(buf, 1, FILE_MAX, f) : 0;
    bool whole = buf && feof(f);
    fclose(f);
    if (!whole) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static const board_file_t *file_named(const intake_board_t *b, const char *name)
{
    for (size_t i = 0; i < sizeof(b->files) / sizeof(b->files[0]); i++)
        if (b->files[i].body && strcmp(b->files[i].name, name) == 0)
            return &b->files[i];
    return NULL;
}

static void security_headers(h2o_req_t *req)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("content-security-policy"), 0,
                          NULL, H2O_STRLIT("default-src 'self'; frame-ancestors 'none'"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-content-type-options"), 0,
                          NULL, H2O_STRLIT("nosniff"));
}

static void send_body(h2o_req_t *req, int status, const char *type, const char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = status < 300 ? "OK" : status < 400 ? "See Other" : "Error";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type,
                   strlen(type));
    security_headers(req);
    h2o_iovec_t buf = h2o_strdup(&req->pool, body, len);
    req->res.content_length = buf.len;
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
}

static void send_file(h2o_req_t *req, const intake_board_t *b, const char *name, int status)
{
    const board_file_t *f = file_named(b, name);
    if (f == NULL) {
        intake_http_send_error(req, 404, "not_found", "", "the board is not installed (board_dir)");
        return;
    }
    send_body(req, status, f->type, f->body, f->len);
}

/* ---- who may look ---- */

static bool cookie_token(h2o_req_t *req, char *out, size_t size)
{
    char all[1024];
    if (!intake_http_header(req, H2O_TOKEN_COOKIE, NULL, all, sizeof(all)))
        return false;
    for (char *p = all; (p = strstr(p, COOKIE "=")) != NULL; p++) {
        if (p != all && p[-1] != ' ' && p[-1] != ';')
            continue;
        p += strlen(COOKIE "=");
        size_t n = strcspn(p, "; ");
        if (n == 0 || n >= size)
            return false;
        memcpy(out, p, n);
        out[n] = '\0';
        return true;
    }
    return false;
}

/* The token of the request (header, else cookie), or NULL. */
static const char *token_of(h2o_req_t *req, char *buf, size_t size)
{
    if (intake_http_header(req, H2O_TOKEN_AUTHORIZATION, NULL, buf, size) &&
        strncasecmp(buf, "Bearer ", 7) == 0)
        return buf + 7;
    return cookie_token(req, buf, size) ? buf : NULL;
}

/* 0 when token may see the board; 401 (unknown), 403 (no supervising role). */
static int may_look(intake_board_t *b, MDB_txn *txn, const char *token)
{
    intake_actor_t actor;
    cb_error_t err;
    if (token == NULL || intake_authenticate(b->http->in, txn, token, &actor, &err) != 0)
        return 401;
    if (actor.operator_)
        return 0;
    for (size_t i = 0; i < actor.norgs; i++) {
        Casebus__V1__Organisation *o = intake_org_get(&b->http->in->st, txn, actor.orgs[i]);
        bool ok = o && (o->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU ||
                        o->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_LEADING_GROUP_OFFICE);
        if (o)
            casebus__v1__organisation__free_unpacked(o, NULL);
        if (ok)
            return 0;
    }
    return 403;
}

static int check(intake_board_t *b, const char *token)
{
    MDB_txn *txn;
    cb_error_t err;
    if (cb_store_begin(b->http->in->st.store, false, &txn, &err) != 0)
        return 503;
    int status = may_look(b, txn, token);
    cb_store_abort(&txn);
    return status;
}

static void refuse(h2o_req_t *req, int status)
{
    if (status == 503)
        intake_http_send_error(req, 503, "unavailable", "", "the store cannot be read");
    else if (status == 401)
        intake_http_send_error(req, 401, "unauthenticated", "Authorization",
                               "the board needs a token: an operator's, the command platform's "
                               "or the leading-group office's");
    else
        intake_http_send_error(req, 403, "forbidden", "Authorization",
                               "the board shows every case: for operators, the command platform "
                               "and the leading-group office only");
}

/* Signs in: the cookie, then on to /board. */
static void sign_in(intake_board_t *b, h2o_req_t *req, const char *token)
{
    int status = check(b, token);
    if (status != 0) {
        const board_file_t *f = file_named(b, "login.html");
        if (f && status != 503)
            send_body(req, status, f->type, f->body, f->len);
        else
            refuse(req, status);
        return;
    }
    char cookie[400];
    snprintf(cookie, sizeof(cookie), COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s", token,
             b->http->ssl_ctx ? "; Secure" : "");
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL,
                   h2o_strdup(&req->pool, cookie, SIZE_MAX).base, strlen(cookie));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, H2O_STRLIT("/board"));
    send_body(req, 303, "text/plain; charset=utf-8", "signed in\n", 10);
}

/* "token=…" of a query or a form body (percent-decoded) into out. */
static bool form_token(const char *text, size_t len, char *out, size_t size)
{
    for (size_t i = 0; i + 6 <= len; i++) {
        if ((i == 0 || text[i - 1] == '&') && memcmp(text + i, "token=", 6) == 0) {
            size_t k = 0;
            for (i += 6; i < len && text[i] != '&' && k + 1 < size; i++) {
                char c = text[i];
                if (c == '%' && i + 2 < len) {
                    char hex[3] = {text[i + 1], text[i + 2], 0};
                    c = (char)strtol(hex, NULL, 16);
                    i += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                out[k++] = c;
            }
            out[k] = '\0';
            return k > 0 && strspn(out, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-") == k;
        }
    }
    return false;
}

/* ---- the snapshot ---- */

typedef struct tiles {
    intake_board_t *b;
    MDB_txn *txn;
    json_t *towns, *depts;
    int rc;
} tiles_t;

static const char *light_of(const cb_org_counts_t *c)
{
    return c->red || c->escalated ? "red" : c->yellow ? "yellow" : "green";
}

static void add_tile(void *ctx, const Casebus__V1__Organisation *o)
{
    tiles_t *t = ctx;
    bool town = o->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_TOWNSHIP;
    bool dept = o->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_COUNTY_DEPARTMENT ||
                o->kind == CASEBUS__V1__ORG_KIND__ORG_KIND_ENFORCEMENT_BUREAU;
    if (!town && !dept)
        return;
    cb_org_counts_t c;
    cb_error_t err;
    if (cb_lists_org_counts(&t->b->http->in->st.lists, t->txn, o->org_id, &c, &err) != 0) {
        t->rc = -1;
        return;
    }
    json_t *tile = json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:s}", "org_id", o->org_id, "name",
                             o->name ? o->name : "", "division_code",
                             o->division_code ? o->division_code : "", "open", (int)c.open,
                             "yellow", (int)c.yellow, "red", (int)c.red, "escalated",
                             (int)c.escalated, "light", light_of(&c));
    if (tile == NULL || json_array_append_new(town ? t->towns : t->depts, tile) != 0)
        t->rc = -1;
}

static int add_overdue(void *ctx, const cb_ob_row_t *r)
{
    intake_rows_t *x = ctx;
    json_t *item = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s},s:o,s:I,s:s,s:o}", "obligation_id",
                             r->obligation_id, "case_id", r->case_id, "rule_id", r->rule_id,
                             "title", r->title, "responsible", "org_id", r->responsible, "name",
                             r->responsible_name, "due_at", intake_json_time(r->due_ms), "late_ms",
                             (json_int_t)(x->now - r->due_ms), "level", cb_level_name(r->level),
                             "supervision_id",
                             r->supervision_id[0] ? json_string(r->supervision_id) : json_null());
    return intake_rows_add(x, item);
}

static int add_today(void *ctx, const cb_case_row_t *r)
{
    intake_rows_t *x = ctx;
    json_t *item = json_pack("{s:s,s:o,s:s,s:s,s:s,s:s,s:s}", "case_id", r->case_id,
                             "reported_at", intake_json_time(r->reported_ms), "township",
                             r->township_name[0] ? r->township_name : r->township, "matter",
                             r->matter_name[0] ? r->matter_name : r->matter, "state", r->state,
                             "holder", r->holder, "description", r->description);
    return intake_rows_add(x, item);
}

static int by_division(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    return strcmp(json_string_value(json_object_get(x, "division_code")),
                  json_string_value(json_object_get(y, "division_code")));
}

static int by_id(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    return strcmp(json_string_value(json_object_get(x, "org_id")),
                  json_string_value(json_object_get(y, "org_id")));
}

static json_t *sorted(json_t *arr, int (*cmp)(const void *, const void *))
{
    size_t n = json_array_size(arr);
    json_t **v = malloc((n ? n : 1) * sizeof(*v)), *out = json_array();
    for (size_t i = 0; v && i < n; i++)
        v[i] = json_array_get(arr, i);
    if (v)
        qsort(v, n, sizeof(*v), cmp);
    for (size_t i = 0; v && out && i < n; i++)
        json_array_append(out, v[i]);
    free(v);
    json_decref(arr);
    return out;
}

/* The board as JSON text (malloc'd), or NULL. */
static char *snapshot(intake_board_t *b, const char *id)
{
    intake_state_t *st = &b->http->in->st;
    MDB_txn *txn;
    cb_error_t err;
    if (cb_store_begin(st->store, false, &txn, &err) != 0)
        return NULL;
    int64_t now = cb_now_ms(), day = cb_cst_day_start_ms(cb_cst_day(now));
    tiles_t t = {.b = b, .txn = txn, .towns = json_array(), .depts = json_array()};
    intake_org_each(st, txn, add_tile, &t);
    intake_rows_t overdue = {.items = json_array(), .now = now};
    intake_rows_t today = {.items = json_array(), .now = now};
    char next[CB_LIST_CURSOR_MAX];
    cb_ob_query_t oq = {.level = -1, .due_to_ms = now, .limit = OVERDUE_SHOWN};
    cb_case_query_t cq = {.level = -1, .overdue = -1, .from_ms = day, .limit = TODAY_SHOWN};
    uint64_t n_overdue = 0, n_today = 0;
    int rc = t.rc;
    if (rc == 0)
        rc = cb_lists_obligations(&st->lists, txn, &oq, add_overdue, &overdue, next, &err);
    if (rc == 0)
        rc = cb_lists_cases(&st->lists, txn, &cq, add_today, &today, next, &err);
    if (rc == 0)
        rc = cb_lists_count_due_before(&st->lists, txn, now, 1000000, &n_overdue, &err);
    if (rc == 0)
        rc = cb_lists_count_since(&st->lists, txn, day, 1000000, &n_today, &err);
    cb_store_abort(&txn);
    char date[16];
    cb_date_format(cb_cst_day(now), date, sizeof(date));
    json_t *doc = rc == 0 ? json_pack("{s:s,s:o,s:s,s:o,s:o,s:{s:I,s:o},s:{s:I,s:o}}", "id", id,
                                      "generated_at", intake_json_time(now), "date", date, "townships",
                                      sorted(t.towns, by_division), "departments",
                                      sorted(t.depts, by_id), "overdue", "total",
                                      (json_int_t)n_overdue, "items", overdue.items, "today",
                                      "total", (json_int_t)n_today, "items", today.items)
                          : NULL;
    if (doc == NULL) {
        if (rc != 0) {
            json_decref(t.towns);
            json_decref(t.depts);
            json_decref(overdue.items);
            json_decref(today.items);
        }
        return NULL;
    }
    char *text = cb_jsonw_dumps(doc);
    json_decref(doc);
    return text;
}

/* ---- the stream ---- */

static void sse_push(sse_client_t *c);

static void sse_unlink(sse_client_t *c)
{
    intake_board_t *b = c->board;
    if (c->closed)
        return;
    c->closed = true;
    if (c->prev)
        c->prev->next = c->next;
    else if (b->clients == c)
        b->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    b->nclients--;
}

static void sse_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    sse_client_t *c = (sse_client_t *)gen;
    free(c->sending);
    c->sending = NULL;
    c->busy = false;
    sse_push(c);
}

static void sse_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    (void)req;
    sse_client_t *c = (sse_client_t *)gen;
    sse_unlink(c);
    c->req = NULL;
}

static void sse_dispose(void *p)
{
    sse_client_t *c = p;
    sse_unlink(c);
    free(c->sending);
    free(c->pending);
    c->sending = c->pending = NULL;
}

/* Sends what is pending once h2o has taken the last chunk. */
static void sse_push(sse_client_t *c)
{
    if (c->busy || c->req == NULL)
        return;
    if (c->pending) {
        c->sending = c->pending;
        c->sending_len = c->pending_len;
        c->pending = NULL;
        c->busy = true;
        h2o_iovec_t buf = h2o_iovec_init(c->sending, c->sending_len);
        h2o_send(c->req, &buf, 1, H2O_SEND_STATE_IN_PROGRESS);
    } else if (c->final) {
        h2o_req_t *req = c->req;
        sse_unlink(c);
        c->req = NULL;
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    }
}

/* Queues text for c (only the latest unsent snapshot matters). */
static void sse_queue(sse_client_t *c, const char *text, size_t len)
{
    char *copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, text, len);
    free(c->pending);
    c->pending = copy;
    c->pending_len = len;
    sse_push(c);
}

static char *frame(const char *id, const char *json, size_t *len)
{
    size_t n = strlen(json) + strlen(id) + 64;
    char *f = malloc(n);
    if (f)
        *len = (size_t)snprintf(f, n, "id: %s\nevent: board\ndata: %s\n\n", id, json);
    return f;
}

static void refresh(intake_board_t *b, bool force)
{
    int64_t now = cb_now_ms(), day = cb_cst_day(now);
    uint64_t changes = b->http->in->st.changes;
    if (!force && !b->unsettled && changes == b->sent_changes && day == b->sent_day && b->snapshot)
        return;
    /* A change counted here may still be on its way to the disk, unseen by the
     * snapshot's read: then the next tick reads again. */
    b->unsettled = !cb_group_settled(b->http->in->d.group);
    char id[48];
    snprintf(id, sizeof(id), "%lld.%llu", (long long)b->boot_ms, (unsigned long long)changes);
    char *text = snapshot(b, id);
    if (text == NULL)
        return; /* the next tick tries again */
    if (!force && b->snapshot && strcmp(text, b->snapshot) == 0 && day == b->sent_day) {
        free(text); /* read again, nothing new to show */
        b->sent_changes = changes;
        return;
    }
    free(b->snapshot);
    b->snapshot = text;
    snprintf(b->id, sizeof(b->id), "%s", id);
    b->sent_changes = changes;
    b->sent_day = day;
    size_t len;
    char *f = b->clients ? frame(id, text, &len) : NULL;
    for (sse_client_t *c = b->clients, *next; f && c; c = next) {
        next = c->next;
        sse_queue(c, f, len);
    }
    free(f);
    if (f)
        b->last_beat_ms = now;
}

static void on_tick(uv_timer_t *timer)
{
    intake_board_t *b = timer->data;
    if (b->clients == NULL)
        return;
    refresh(b, false);
    int64_t now = cb_now_ms();
    if (now - b->last_beat_ms >= HEARTBEAT_MS) {
        static const char beat[] = ": keep-alive\n\n";
        for (sse_client_t *c = b->clients, *next; c; c = next) {
            next = c->next;
            if (!c->busy && c->pending == NULL)
                sse_queue(c, beat, sizeof(beat) - 1);
        }
        b->last_beat_ms = now;
    }
}

static void open_stream(intake_board_t *b, h2o_req_t *req)
{
    sse_client_t *c = h2o_mem_alloc_shared(&req->pool, sizeof(*c), sse_dispose);
    memset(c, 0, sizeof(*c));
    c->gen.proceed = sse_proceed;
    c->gen.stop = sse_stop;
    c->req = req;
    c->board = b;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream; charset=utf-8"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    h2o_start_response(req, &c->gen);
    refresh(b, b->snapshot == NULL); /* before c is listed: c gets it below, once */
    c->next = b->clients;
    if (b->clients)
        b->clients->prev = c;
    b->clients = c;
    b->nclients++;
    char last[64];
    bool current = intake_http_header(req, NULL, "last-event-id", last, sizeof(last)) &&
                   strcmp(last, b->id) == 0;
    static const char hello[] = "retry: 2000\n\n";
    size_t len = 0;
    char *f = b->snapshot && !current ? frame(b->id, b->snapshot, &len) : NULL;
    if (f) {
        char *both = malloc(sizeof(hello) - 1 + len);
        if (both) {
            memcpy(both, hello, sizeof(hello) - 1);
            memcpy(both + sizeof(hello) - 1, f, len);
            sse_queue(c, both, sizeof(hello) - 1 + len);
            free(both);
        }
        free(f);
    } else {
        sse_queue(c, hello, sizeof(hello) - 1);
    }
}

/* ---- routes ---- */

bool intake_board_route(intake_http_t *http, h2o_req_t *req, char segs[][80], size_t n)
{
    intake_board_t *b = http->board;
    bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")),
         post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    bool page = n >= 1 && strcmp(segs[0], "board") == 0;
    bool api = n >= 2 && strcmp(segs[0], "v1") == 0 && strcmp(segs[1], "board") == 0;
    if (!page && !api)
        return false;
    if (b == NULL || !b->installed) {
        intake_http_send_error(req, 404, "not_found", "", "the board is not installed (board_dir)");
        return true;
    }
    char tok[200];
    if (page && n == 2 && get && (strcmp(segs[1], "board.js") == 0 || strcmp(segs[1], "board.css") == 0)) {
        send_file(req, b, segs[1], 200);
        return true;
    }
    if (page && n == 2 && post && strcmp(segs[1], "login") == 0) {
        const char *body = req->entity.base ? req->entity.base : "";
        if (!form_token(body, req->entity.len, tok, sizeof(tok)))
            send_file(req, b, "login.html", 401);
        else
            sign_in(b, req, tok);
        return true;
    }
    if (page && n == 2 && post && strcmp(segs[1], "logout") == 0) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL,
                       H2O_STRLIT(COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL,
                       H2O_STRLIT("/board"));
        send_body(req, 303, "text/plain; charset=utf-8", "signed out\n", 11);
        return true;
    }
    if (page && n == 1 && get) {
        if (req->query_at != SIZE_MAX && req->query_at < req->path.len &&
            form_token(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1, tok,
                       sizeof(tok))) {
            sign_in(b, req, tok);
            return true;
        }
        int status = check(b, token_of(req, tok, sizeof(tok)));
        if (status == 503)
            refuse(req, status);
        else
            send_file(req, b, status == 0 ? "index.html" : "login.html", status == 0 ? 200 : 401);
        return true;
    }
    if (api && get && (n == 2 || (n == 3 && strcmp(segs[2], "stream") == 0))) {
        int status = check(b, token_of(req, tok, sizeof(tok)));
        if (status != 0) {
            refuse(req, status);
            return true;
        }
        if (n == 3) {
            open_stream(b, req);
            return true;
        }
        refresh(b, true);
        intake_http_send_json(req, b->snapshot ? 200 : 503,
                              b->snapshot ? b->snapshot
                                          : "{\"error\":{\"code\":\"unavailable\",\"field\":\"\","
                                            "\"message\":\"the board cannot be read\"}}");
        return true;
    }
    intake_http_send_error(req, get || post ? 404 : 405, get || post ? "not_found" : "method_not_allowed",
                           "", "no such board endpoint (GET /board, /v1/board, /v1/board/stream)");
    return true;
}

int intake_board_start(intake_http_t *http, const char *dir, cb_error_t *err)
{
    intake_board_t *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return cb_error_set(err, CB_ERR_NOMEM, "board_dir", "out of memory");
    b->http = http;
    b->boot_ms = cb_now_ms();
    static const char *const names[][2] = {{"index.html", "text/html; charset=utf-8"},
                                           {"login.html", "text/html; charset=utf-8"},
                                           {"board.js", "text/javascript; charset=utf-8"},
                                           {"board.css", "text/css; charset=utf-8"}};
    size_t loaded = 0;
    for (size_t i = 0; i < 4; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i][0]);
        b->files[i].name = names[i][0];
        b->files[i].type = names[i][1];
        b->files[i].body = slurp(path, &b->files[i].len);
        loaded += b->files[i].body != NULL;
    }
    b->installed = loaded == 4;
    if (!b->installed)
        log_warnx("board_not_installed board_dir=%s reason=\"index.html, login.html, board.js and "
                  "board.css are not all there\"",
                  dir);
    int rc = uv_timer_init(http->in->d.loop, &b->timer);
    if (rc != 0) {
        for (size_t i = 0; i < 4; i++)
            free(b->files[i].body);
        free(b);
        return cb_error_set(err, CB_ERR_UV, "board_dir", "uv_timer_init: %s", uv_strerror(rc));
    }
    b->timer.data = b;
    uv_timer_start(&b->timer, on_tick, TICK_MS, TICK_MS);
    http->board = b;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    intake_board_t *b = h->data;
    for (size_t i = 0; i < sizeof(b->files) / sizeof(b->files[0]); i++)
        free(b->files[i].body);
    free(b->snapshot);
    free(b);
}

void intake_board_stop(intake_http_t *http)
{
    intake_board_t *b = http->board;
    if (b == NULL)
        return;
    /* Every stream ends (after what it is sending); none refers to b from here. */
    for (sse_client_t *c = b->clients, *next; c; c = next) {
        next = c->next;
        c->final = true;
        sse_unlink(c);
        sse_push(c);
    }
    http->board = NULL;
    uv_timer_stop(&b->timer);
    uv_close((uv_handle_t *)&b->timer, on_timer_closed);
}
