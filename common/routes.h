/*
 * routes.h — the HTTP door's commands: which path names which Command, and
 * what a command accepted answers. intake routes by it, and the OpenAPI
 * document (openapi.h) is written from it and the .proto descriptors.
 */
#ifndef CB_ROUTES_H
#define CB_ROUTES_H

#include <stddef.h>

typedef struct cb_route {
    const char *path;       /* the document's template: "/v1/cases/{case_id}/transfers" */
    const char *collection; /* the path's second segment: "cases" */
    const char *action;     /* its fourth, after the id; NULL for /v1/<collection> */
    const char *param;      /* the id's name in the template; NULL without one */
    int kind;               /* the body's field number in Command (intake.proto) */
    int status;             /* 201: something new is recorded; 202: another daemon acts next */
    const char *id_name;    /* the answer's id besides case_id ("transfer_id"); NULL: none */
    const char *summary;    /* one line for people */
} cb_route_t;

extern const cb_route_t cb_routes[];
extern const size_t cb_nroutes;

/* The route of a POST path's segments ("v1", "cases", id, "transfers"), with
 * *id the path's id (NULL without one); NULL when no command lives there. */
const cb_route_t *cb_route_match(char segs[][80], size_t n, const char **id);
/* The route of a Command kind, NULL for none. */
const cb_route_t *cb_route_of(int kind);
/* Whether s may be an id in a path: 1-79 of A-Z a-z 0-9 - _ : */
int cb_route_id_ok(const char *s);

#endif
