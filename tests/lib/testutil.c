/*
 * testutil.c — see testutil.h.
 */
#include "testutil.h"
#include "cbtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char *path = malloc(4096);
    if (path == NULL)
        return NULL;
    snprintf(path, 4096, "%s/casebus-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (mkdtemp(path) == NULL) {
        free(path);
        return NULL;
    }
    return path;
}

void tu_rmtree(char **path)
{
    if (*path == NULL)
        return;
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", *path);
    if (system(cmd) != 0)
        fprintf(stderr, "tu_rmtree: could not remove %s\n", *path);
    free(*path);
    *path = NULL;
}

bool tu_run_until(uv_loop_t *loop, bool (*pred)(void *ctx), void *ctx, uint64_t timeout_ms)
{
    uint64_t end = cb_mono_ns() + timeout_ms * 1000000ULL;
    while (!pred(ctx)) {
        if (cb_mono_ns() > end)
            return pred(ctx);
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    return true;
}

static bool never(void *ctx)
{
    (void)ctx;
    return false;
}

void tu_run_for(uv_loop_t *loop, uint64_t ms)
{
    tu_run_until(loop, never, NULL, ms);
}

static void close_one(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void tu_loop_drain(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
    uv_walk(loop, close_one, NULL);
    while (uv_run(loop, UV_RUN_NOWAIT) != 0)
        ;
}
