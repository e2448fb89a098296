/*
 * util.c — what the CLI's commands share: reading a file, asking a daemon.
 */
#include "cli.h"
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 30000

char *cli_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "casebus: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (b == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "casebus: cannot read %s\n", path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

Casebus__V1__ControlReply *cli_call_within(const cb_config_t *cfg, const char *daemon,
                                           Casebus__V1__ControlRequest *req, int timeout_ms)
{
    Casebus__V1__ControlReply *rep;
    cb_error_t e;
    char dflt[64];
    snprintf(dflt, sizeof(dflt), "ipc://var/%s.ctl", daemon);
    const char *endpoint = cb_config_get(cfg, daemon, "control_bind", dflt);
    if (cb_control_call(daemon, endpoint, req, timeout_ms, &rep, &e) != 0) {
        fprintf(stderr, "casebus: %s\n", e.message);
        return NULL;
    }
    return rep;
}

Casebus__V1__ControlReply *cli_call(const cb_config_t *cfg, const char *daemon,
                                    Casebus__V1__ControlRequest *req)
{
    return cli_call_within(cfg, daemon, req, TIMEOUT_MS);
}

bool cli_wants_help(int argc, char **argv)
{
    return argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0);
}

int cli_run_sub(const cli_sub_t *subs, size_t n, const cb_config_t *cfg, int argc, char **argv)
{
    for (size_t i = 0; argc >= 1 && i < n; i++)
        if (strcmp(argv[0], subs[i].name) == 0)
            return subs[i].run(cfg, argc - 1, argv + 1);
    return -1;
}
