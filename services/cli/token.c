/*
 * token.c — casebus token create | list | revoke. Through intake's control
 * socket while intake runs; when nobody answers, through intake's own offline
 * tool (casebus-intake token …, beside this binary), which opens intake's
 * store and so needs intake stopped.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "casebus/v1/control.pb-c.h"
#include "cbtime.h"
#include "cli.h"
#include "control.h"

#define USAGE                                                                                  \
    "usage: casebus token create --org ID [--org ID ...] [--label TEXT] [--operator]\n"       \
    "                            [--expires 30d|2027-06-30]\n"                               \
    "       casebus token list [--json]\n"                                                    \
    "       casebus token revoke TOKEN_ID [--reason TEXT]\n"

static int bad_usage(const char *why)
{
    if (why)
        fprintf(stderr, "casebus: %s\n", why);
    fputs(USAGE, stderr);
    return 2;
}

/* argv for casebus-intake token VERB --config CONF ARGS…; path gets the tool. */
static char **offline_argv(const cb_config_t *cfg, const char *verb, int argc, char **argv,
                           char *path, size_t size)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        fprintf(stderr, "casebus: cannot find casebus-intake beside this program\n");
        return NULL;
    }
    self[n] = '\0';
    snprintf(path, size, "%s/casebus-intake", dirname(self));
    char **args = calloc((size_t)argc + 6, sizeof(*args));
    if (args == NULL)
        return NULL;
    int k = 0;
    args[k++] = path;
    args[k++] = "token";
    args[k++] = (char *)verb;
    args[k++] = "--config";
    args[k++] = (char *)cb_config_path(cfg);
    for (int i = 0; i < argc; i++)
        args[k++] = argv[i];
    return args;
}

static int exec_offline(const cb_config_t *cfg, const char *verb, int argc, char **argv)
{
    char tool[4200];
    char **args = offline_argv(cfg, verb, argc, argv, tool, sizeof(tool));
    if (args == NULL)
        return 1;
    fflush(stdout);
    execv(tool, args);
    fprintf(stderr, "casebus: cannot run %s: %s\n", tool, strerror(errno));
    free(args);
    return 1;
}

/* The offline tool's standard output (its JSON), or NULL (it said why on stderr). */
static json_t *offline_json(const cb_config_t *cfg, const char *verb)
{
    char tool[4200];
    char **args = offline_argv(cfg, verb, 0, NULL, tool, sizeof(tool));
    int fds[2];
    if (args == NULL || pipe(fds) != 0) {
        free(args);
        return NULL;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(tool, args);
        fprintf(stderr, "casebus: cannot run %s: %s\n", tool, strerror(errno));
        _exit(127);
    }
    free(args);
    close(fds[1]);
    FILE *in = pid > 0 ? fdopen(fds[0], "r") : NULL;
    json_t *doc = in ? json_loadf(in, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
    if (in)
        fclose(in);
    else
        close(fds[0]);
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* One control call to intake. 0: *rep holds the answer; 1: nobody answered. */
static int call(const cb_config_t *cfg, Casebus__V1__ControlRequest *req,
                Casebus__V1__ControlReply **rep)
{
    const char *cbind = cb_config_get(cfg, "intake", "control_bind", NULL);
    cb_error_t e;
    req->request_id = "cli";
    return cbind && cb_control_call("intake", cbind, req, 3000, rep, &e) == 0 ? 0 : 1;
}

static int create_token(const cb_config_t *cfg, int argc, char **argv)
{
    char *orgs[64];
    Casebus__V1__CreateToken ct = CASEBUS__V1__CREATE_TOKEN__INIT;
    for (int i = 0; i < argc; i++) {
        bool more = i + 1 < argc;
        if (strcmp(argv[i], "--org") == 0 && more && ct.n_org_ids < 64)
            orgs[ct.n_org_ids++] = argv[++i];
        else if (strcmp(argv[i], "--label") == 0 && more)
            ct.label = argv[++i];
        else if (strcmp(argv[i], "--operator") == 0)
            ct.operator_ = true;
        else if (strcmp(argv[i], "--expires") == 0 && more) {
            cb_error_t err;
            if (cb_time_parse_after(argv[++i], cb_now_ms(), &ct.expires_at_ms, &err) != 0) {
                fprintf(stderr, "casebus: --expires %s\n", err.message);
                return 2;
            }
        } else
            return bad_usage(strcmp(argv[i], "--help") == 0 ? NULL : "token create: bad option");
    }
    ct.org_ids = orgs;
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_CREATE_TOKEN;
    req.create_token = &ct;
    Casebus__V1__ControlReply *rep;
    if (call(cfg, &req, &rep) != 0)
        return exec_offline(cfg, "create", argc, argv);
    json_t *j = rep->ok ? json_loads(rep->status_json, 0, NULL) : NULL;
    const char *secret = json_string_value(json_object_get(j, "token"));
    if (secret)
        printf("%s\n", secret);
    else
        fprintf(stderr, "casebus: token create refused, nothing changed: %s\n", rep->message);
    json_decref(j);
    casebus__v1__control_reply__free_unpacked(rep, NULL);
    return secret ? 0 : 1;
}

static const char *text_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

static void print_table(json_t *doc)
{
    printf("%-16s  %-7s  %-25s  %-25s  %s\n", "TOKEN", "STATE", "CREATED", "EXPIRES",
           "ORGANISATIONS / LABEL");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(doc, "tokens"), i, t) {
        printf("%-16s  %-7s  %-25s  %-25s  ", text_of(t, "token_id"), text_of(t, "state"),
               text_of(t, "created_at"),
               json_object_get(t, "revoked_at") ? text_of(t, "revoked_at")
                                                : text_of(t, "expires_at"));
        size_t k;
        json_t *org;
        if (json_is_true(json_object_get(t, "operator")))
            fputs("(operator) ", stdout);
        json_array_foreach(json_object_get(t, "org_ids"), k, org)
            printf("%s%s", k ? "," : "", json_string_value(org));
        const char *label = text_of(t, "label");
        printf("%s%s\n", *label && strcmp(label, "-") ? "  " : "", strcmp(label, "-") ? label : "");
    }
}

static int list_tokens(const cb_config_t *cfg, int argc, char **argv)
{
    bool as_json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = true;
        else
            return bad_usage(strcmp(argv[i], "--help") == 0 ? NULL : "token list: bad option");
    }
    Casebus__V1__ListTokens lt = CASEBUS__V1__LIST_TOKENS__INIT;
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_TOKENS;
    req.list_tokens = &lt;
    Casebus__V1__ControlReply *rep;
    json_t *doc = NULL;
    if (call(cfg, &req, &rep) == 0) {
        if (rep->ok)
            doc = json_loads(rep->status_json, 0, NULL);
        else
            fprintf(stderr, "casebus: token list: %s\n", rep->message);
        casebus__v1__control_reply__free_unpacked(rep, NULL);
    } else
        doc = offline_json(cfg, "list");
    if (doc == NULL)
        return 1;
    if (as_json) {
        char *text = json_dumps(doc, JSON_INDENT(2));
        printf("%s\n", text ? text : "");
        free(text);
    } else
        print_table(doc);
    json_decref(doc);
    return 0;
}

static int revoke_token(const cb_config_t *cfg, int argc, char **argv)
{
    Casebus__V1__RevokeToken rt = CASEBUS__V1__REVOKE_TOKEN__INIT;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
            rt.reason = argv[++i];
        else if (argv[i][0] != '-' && rt.token_id[0] == '\0')
            rt.token_id = argv[i];
        else
            return bad_usage(strcmp(argv[i], "--help") == 0 ? NULL : "token revoke: bad option");
    }
    if (rt.token_id[0] == '\0')
        return bad_usage("token revoke: which token? (casebus token list)");
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_REVOKE_TOKEN;
    req.revoke_token = &rt;
    Casebus__V1__ControlReply *rep;
    if (call(cfg, &req, &rep) != 0)
        return exec_offline(cfg, "revoke", argc, argv);
    int rc = rep->ok ? 0 : 1;
    if (rep->ok)
        printf("%s (event %llu)\n", rep->message, (unsigned long long)rep->event_seq);
    else
        fprintf(stderr, "casebus: token revoke refused, nothing changed: %s\n", rep->message);
    casebus__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

int cli_token(const cb_config_t *cfg, int argc, char **argv)
{
    static const cli_sub_t subs[] = {
        {"create", create_token}, {"list", list_tokens}, {"revoke", revoke_token}};
    int rc = cli_run_sub(subs, sizeof(subs) / sizeof(subs[0]), cfg, argc, argv);
    if (rc >= 0)
        return rc;
    if (cli_wants_help(argc, argv)) {
        fputs(USAGE, stdout);
        return 0;
    }
    return bad_usage(argc ? "token: unknown subcommand" : NULL);
}
