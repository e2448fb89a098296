/*
 * main.c — `casebus`, the operators' command line. This file: options and the
 * subcommands that talk to a daemon's control socket.
 *
 *   casebus [--config FILE] org import FILE.csv
 *   casebus [--config FILE] catalog import FILE.csv [--effective-from DATE]
 *   casebus [--config FILE] status
 *   casebus [--config FILE] calendar import FILE.cal
 *   casebus [--config FILE] tail …            (tail.c)
 *
 * The configuration is the deployment file (default: $CASEBUS_CONFIG, else
 * var/casebus.conf, else deploy/casebus.conf); the CLI reads the endpoints from it.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calendar.h"
#include "evlog.h"
#include "store.h"
#include "casebus/v1/control.pb-c.h"
#include "control.h"
#include "curve.h"
#include "cbtime.h"
#include "config.h"
#include "cli.h"
#include "openapi.h"

#include <libgen.h>


static void usage(FILE *to)
{
    fprintf(to,
            "usage: casebus [--config FILE] COMMAND ...\n"
            "\n"
            "commands:\n"
            "  org import FILE.csv                       import the organisation registry\n"
            "                                            (columns: org_id,kind,name,parent_id,\n"
            "                                            division_code,credit_code)\n"
            "  catalog import FILE.csv [--effective-from DATE]\n"
            "                                            import a delegation catalogue version\n"
            "                                            in force for cases discovered from DATE\n"
            "                                            (default: now)\n"
            "  calendar import FILE [--year YYYY]        load or correct years of the holiday\n"
            "                                            calendar from a .cal, .ics or .json file\n"
            "                                            (deadline recomputes the open obligations\n"
            "                                            they move)\n"
            "  calendar show YYYY [--calendar DIR]       a year as casebus due counts it: its\n"
            "                                            file, or the provisional statutory table\n"
            "  subscribe --org ID (--url URL | --channel zmq) [--secret S] [--events T,T...]\n"
            "            [--rate N] [--batch N]          deliver an organisation's events to a\n"
            "                                            webhook as CloudEvents (signed with the\n"
            "                                            secret; --batch: up to N per request),\n"
            "                                            or keep them for its platform to pull\n"
            "  unsubscribe ID                            remove a subscription\n"
            "  subscription rotate-secret ID [--secret S] [--overlap 24h]\n"
            "                                            a new signing secret; the old one\n"
            "                                            signs too for the overlap\n"
            "  subscription update ID [--url URL] [--events T,T...|all] [--rate N] [--batch N]\n"
            "                                            change a subscription in place\n"
            "  subscription test ID                      send it a signed ping event\n"
            "  subscriptions [--json]                    list subscriptions (a table)\n"
            "  deadletters [--json]                      list dead letters (a table)\n"
            "  redeliver DELIVERY_ID                     send a dead letter again\n"
            "  redeliver --dead --subscription ID        send every dead letter of a\n"
            "                                            subscription again\n"
            "  listen --org ID [--events T,T...] [--port N] [--json]\n"
            "                                            receive an organisation's webhooks\n"
            "                                            locally and print each, signature\n"
            "                                            verified (Ctrl-C unsubscribes)\n"
            "  deliveries --subscription ID [--limit N] [--json]\n"
            "                                            a subscription's deliveries, newest\n"
            "                                            first: state, attempts, status, latency\n"
            "  case ID [--json]                          one case's timeline across every daemon,\n"
            "                                            who is competent, transfers, time limits\n"
            "  cases [--township CODE] [--org ID] [--holder ID] [--state S] [--level L]\n"
            "        [--overdue] [--matter CODE] [--from DATE] [--to DATE] [--limit N]\n"
            "        [--cursor C] [--json]               the cases, newest first, as a table\n"
            "  overdue [--responsible ID] [--township CODE] [--rule R] [--level L]\n"
            "        [--limit N] [--json]\n"
            "                                            open time limits past due, most late\n"
            "                                            first, with their 督办 orders\n"
            "  due-soon [--within 2d] [--responsible ID] [--township CODE] [--rule R]\n"
            "        [--level L] [--json]\n"
            "                                            open time limits not yet due, by time\n"
            "                                            remaining (breaching soon first)\n"
            "  submit FILE.json [--path /v1/...] [--token T]\n"
            "                                            send a command to intake's HTTP API\n"
            "                                            (token: --token, $CASEBUS_TOKEN, or the\n"
            "                                            file 'token' beside the configuration)\n"
            "  report (--quarter 2026Q3 | --from DATE --to DATE) [--csv]\n"
            "                                            per organisation: transfers sent and\n"
            "                                            received, limits on time / late / open,\n"
            "                                            median time to transfer, warnings,\n"
            "                                            breaches, escalations; two rankings\n"
            "  token create --org ID [--org ID ...] [--label TEXT] [--operator]\n"
            "               [--expires 30d|2027-06-30]   a bearer token for a platform, printed\n"
            "                                            once (through intake's control socket,\n"
            "                                            or offline when intake is stopped)\n"
            "  keys init | gen GROUP/NAME | list         the deployment's CURVE key pairs\n"
            "                                            (casebus keys --help)\n"
            "  token list [--json]                       every token: state, organisations,\n"
            "                                            created, expires (never a secret)\n"
            "  token revoke TOKEN_ID [--reason TEXT]     refuse a token from its next command on\n"
            "  status [--json]                           each daemon's state, upstreams, limits,\n"
            "                                            deliveries and calendar as a table,\n"
            "                                            problems first (--json: for scripts)\n"
            "  tail [--from beginning|now|SEQ|TIME] [--json] [--exit-at-end] ...\n"
            "                                            every daemon's events as one stream\n"
            "                                            (casebus tail --help)\n"
            "  verify                                    check every daemon's log (hash chain,\n"
            "                                            sequence, time); report the first\n"
            "                                            broken record\n"
            "  completion bash                           a bash completion script for casebus\n"
            "  openapi                                   print the HTTP API as an OpenAPI 3.1\n"
            "                                            document (intake serves the same at\n"
            "                                            /openapi.json)\n"
            "  due --from TIME (--working-days N | --hours N | --days N) [--calendar DIR]\n"
            "                                            when a time limit falls due, by the\n"
            "                                            holiday calendar (default deploy/calendar)\n"
            "\n"
            "exit status: 0 ok, 1 failed (a refusal, a daemon down or stalled), 2 usage,\n"
            "3 warning (e.g. a limit counted with a provisional calendar).\n"
            "Imports are all or nothing: a bad row is reported by line and column and\n"
            "nothing changes. See docs/operations.md.\n");
}

static const char *default_config(void)
{
    const char *env = getenv("CASEBUS_CONFIG");
    if (env && *env)
        return env;
    return access("var/casebus.conf", R_OK) == 0 ? "var/casebus.conf" : "deploy/casebus.conf";
}

static int import(const cb_config_t *cfg, bool catalog, int argc, char **argv)
{
    if (argc < 1) {
        usage(stderr);
        return 2;
    }
    const char *file = argv[0];
    int64_t from = 0;
    for (int i = 1; i < argc; i++) {
        cb_error_t e;
        if (catalog && strcmp(argv[i], "--effective-from") == 0 && i + 1 < argc) {
            if (cb_time_parse(argv[++i], &from, &e) != 0) {
                fprintf(stderr, "casebus: --effective-from: %s\n", e.message);
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    size_t len;
    char *csv = cli_slurp(file, &len);
    if (csv == NULL)
        return 1;
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    Casebus__V1__ImportOrgs io = CASEBUS__V1__IMPORT_ORGS__INIT;
    Casebus__V1__ImportCatalog ic = CASEBUS__V1__IMPORT_CATALOG__INIT;
    req.request_id = "cli";
    if (catalog) {
        ic.source_name = (char *)file;
        ic.csv.data = (uint8_t *)csv;
        ic.csv.len = len;
        ic.effective_from_ms = from;
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_IMPORT_CATALOG;
        req.import_catalog = &ic;
    } else {
        io.source_name = (char *)file;
        io.csv.data = (uint8_t *)csv;
        io.csv.len = len;
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_IMPORT_ORGS;
        req.import_orgs = &io;
    }
    Casebus__V1__ControlReply *rep = cli_call(cfg, "router", &req);
    free(csv);
    if (rep == NULL)
        return 1;
    int rc = rep->ok ? 0 : 1;
    if (rep->ok)
        printf("%s (event %llu)\n", rep->message, (unsigned long long)rep->event_seq);
    else
        fprintf(stderr, "casebus: %s: refused, nothing changed: %s\n", file, rep->message);
    casebus__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

/* casebus org|catalog import FILE */
static int import_named(const cb_config_t *cfg, const char *name, int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "import") != 0) {
        usage(stderr);
        return 2;
    }
    return import(cfg, strcmp(name, "catalog") == 0, argc - 1, argv + 1);
}

/* casebus verify: every daemon's log, opened read-only beside the running
 * daemon. Exit 1 when any chain is broken, 2 when a log cannot be read. */
static int verify(const cb_config_t *cfg, int argc, char **argv)
{
    (void)argc, (void)argv;
    static const char *daemons[] = {"intake", "router", "deadline", "notify"};
    int worst = 0;
    for (size_t i = 0; i < 4; i++) {
        if (!cb_config_has_section(cfg, daemons[i]))
            continue;
        char dflt[64];
        snprintf(dflt, sizeof(dflt), "var/%s", daemons[i]);
        const char *dir = cb_config_get(cfg, daemons[i], "data_dir", dflt);
        cb_store_opts_t o = {.dir = dir, .read_only = true};
        cb_store_t *store = NULL;
        cb_log_t *log = NULL;
        MDB_txn *txn = NULL;
        cb_error_t err;
        uint64_t bad = 0, checked = 0;
        int rc;
        if ((rc = cb_store_open(&store, &o, &err)) != 0 ||
            (rc = cb_log_open(&log, store, daemons[i], &err)) != 0 ||
            (rc = cb_store_begin(store, false, &txn, &err)) != 0) {
            printf("%-9s %s: cannot read: %s\n", daemons[i], dir, err.message);
            worst = worst ? worst : 2;
        } else if ((rc = cb_log_verify(log, txn, &bad, &checked, &err)) != 0) {
            printf("%-9s BROKEN at record %llu (%llu records before it check out): %s\n",
                   daemons[i], (unsigned long long)bad, (unsigned long long)(bad ? bad - 1 : 0),
                   err.message);
            worst = 1;
        } else {
            printf("%-9s ok: %llu records, hash chain intact\n", daemons[i],
                   (unsigned long long)checked);
        }
        cb_store_abort(&txn);
        cb_log_destroy(&log);
        cb_store_destroy(&store);
    }
    return worst;
}

/* Every command. talks: it asks a daemon over ZeroMQ, with the operator's
 * CURVE key pair when the deployment has keys; own_help: it answers --help
 * itself. completion and openapi run before the configuration is read. */
typedef int plain_fn(const cb_config_t *, int, char **);
typedef int named_fn(const cb_config_t *, const char *, int, char **);
static const struct {
    const char *name;
    bool talks, own_help;
    plain_fn *run;
    named_fn *named; /* given the command's name */
} commands[] = {
    {"org", true, false, NULL, import_named},
    {"catalog", true, false, NULL, import_named},
    {"calendar", true, true, cli_calendar, NULL},
    {"status", true, false, cli_status, NULL},
    {"subscribe", true, false, NULL, cli_notify},
    {"unsubscribe", true, false, NULL, cli_notify},
    {"subscriptions", true, false, NULL, cli_notify},
    {"deadletters", true, false, NULL, cli_notify},
    {"redeliver", true, false, NULL, cli_notify},
    {"deliveries", true, false, NULL, cli_notify},
    {"listen", true, false, cli_listen, NULL},
    {"subscription", true, true, cli_subscription, NULL},
    {"token", true, false, cli_token, NULL},
    {"report", false, false, cli_report, NULL},
    {"case", false, false, cli_case, NULL},
    {"cases", false, false, cli_cases, NULL},
    {"overdue", false, false, NULL, cli_obligations},
    {"due-soon", false, false, NULL, cli_obligations},
    {"submit", false, false, cli_submit, NULL},
    {"tail", true, true, cli_tail, NULL},
    {"verify", false, false, verify, NULL},
    {"due", false, false, cli_due, NULL},
    {"keys", false, true, cli_keys, NULL}, /* makes the keys the others need */
    {"completion", false, false, NULL, NULL},
    {"openapi", false, false, NULL, NULL},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* casebus completion bash: a bash completion script made from the commands
 * table above and each command's options in its usage lines. */
static int completion(int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "bash") != 0) {
        fprintf(stderr, "usage: casebus completion bash   (e.g. source <(casebus completion bash))\n");
        return 2;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return 1;
    usage(f);
    fclose(f);
    printf("# bash completion for casebus (casebus completion bash)\n_casebus() {\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} cmd=\"\" i\n"
           "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
           "        case ${COMP_WORDS[i]} in --config) ((i++)) ;; -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac\n"
           "    done\n    case $cmd in\n");
    for (size_t k = 0; k < NCOMMANDS; k++) {
        /* the options named on the command's usage lines */
        char opts[1024] = "";
        size_t used = 0, n = strlen(commands[k].name);
        bool in = false;
        char *copy = strdup(text), *save = NULL;
        for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line;
             line = strtok_r(NULL, "\n", &save)) {
            if (strncmp(line, "  ", 2) == 0 && line[2] != ' ')
                in = strncmp(line + 2, commands[k].name, n) == 0 && (line[2 + n] == ' ' || !line[2 + n]);
            else if (strncmp(line, "  ", 2) != 0)
                in = false;
            for (char *p = in ? strstr(line, "--") : NULL; p; p = strstr(p + 2, "--")) {
                size_t l = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-") + 2;
                char word[64];
                snprintf(word, sizeof(word), "%.*s ", (int)(l < 60 ? l : 60), p);
                if (l > 2 && !strstr(opts, word) && used + strlen(word) < sizeof(opts)) {
                    memcpy(opts + used, word, strlen(word) + 1);
                    used += strlen(word);
                }
            }
        }
        free(copy);
        printf("        %s) COMPREPLY=($(compgen -W \"%s--help\" -- \"$cur\")) ;;\n", commands[k].name, opts);
    }
    printf("        *) COMPREPLY=($(compgen -W \"");
    for (size_t k = 0; k < NCOMMANDS; k++)
        printf("%s%s", k ? " " : "", commands[k].name);
    printf(" --config --help\" -- \"$cur\")) ;;\n    esac\n}\ncomplete -o default -F _casebus casebus\n");
    free(text);
    return 0;
}

static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[32];
    if (la >= 31 || lb >= 31)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* casebus openapi: the HTTP API's document, as intake serves it. */
static int cli_openapi(int argc)
{
    if (argc != 0) {
        fprintf(stderr, "usage: casebus openapi\n");
        return 2;
    }
    json_t *doc = cb_openapi_document(CB_API_VERSION);
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (text == NULL) {
        fprintf(stderr, "casebus: out of memory\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

/* One worked example per command, shown by `casebus CMD --help`. */
static const char *const examples[][2] = {
    {"org", "casebus org import deploy/sample/orgs.csv"},
    {"catalog", "casebus catalog import deploy/sample/catalog.csv --effective-from 2024-01-01"},
    {"status", "casebus status            (casebus status --json | jq .notify.dead_letters)"},
    {"subscribe", "casebus subscribe --org wy-lt --url https://platform.example/casebus "
                  "--events transfer_routed,deadline_warning"},
    {"unsubscribe", "casebus unsubscribe S000003"},
    {"subscriptions", "casebus subscriptions --json"},
    {"deadletters", "casebus deadletters"},
    {"redeliver", "casebus redeliver --dead --subscription S000003"},
    {"deliveries", "casebus deliveries --subscription S000003 --limit 20"},
    {"listen", "casebus listen --org wy-zhzf --events routing_failed,escalated"},
    {"token", "casebus token create --org wy-lt --label 履坦镇平台 --expires 90d"},
    {"report", "casebus report --quarter 2026Q4 --csv > 2026Q4.csv"},
    {"case", "casebus case C20261203-000001"},
    {"cases", "casebus cases --township 330723101000 --level red"},
    {"overdue", "casebus overdue --responsible wy-lt"},
    {"due-soon", "casebus due-soon --within 4h"},
    {"submit", "casebus submit case.json --path /v1/cases"},
    {"verify", "casebus verify"},
    {"due", "casebus due --from 2026-12-30T10:00:00+08:00 --working-days 3"},
    {"completion", "source <(casebus completion bash)"},
    {"openapi", "casebus openapi > casebus-openapi.json"},
};

/* casebus CMD --help: that command's lines of the usage, on stdout. */
static void command_help(const char *cmd)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        return;
    usage(f);
    fclose(f);
    size_t n = strlen(cmd);
    bool in = false;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        bool starts = strncmp(line, "  ", 2) == 0 && line[2] != ' ';
        if (starts)
            in = strncmp(line + 2, cmd, n) == 0 && (line[2 + n] == ' ' || line[2 + n] == '\0');
        else if (strncmp(line, "  ", 2) != 0)
            in = false;
        if (in)
            printf("%s\n", line);
    }
    for (size_t k = 0; k < sizeof(examples) / sizeof(examples[0]); k++)
        if (strcmp(examples[k][0], cmd) == 0)
            printf("\nexample: %s\n", examples[k][1]);
    printf("\nSee docs/operations.md; casebus --help lists every command.\n");
    free(text);
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "--config") == 0) {
        config = argv[i + 1];
        i += 2;
    }
    if (i >= argc || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
        usage(i >= argc ? stderr : stdout);
        return i >= argc ? 2 : 0;
    }
    size_t known = 0;
    while (known < NCOMMANDS && strcmp(commands[known].name, argv[i]) != 0)
        known++;
    if (known == NCOMMANDS) {
        const char *best = NULL;
        size_t bd = 3;
        for (size_t k = 0; k < NCOMMANDS; k++) {
            size_t d = distance(argv[i], commands[k].name);
            if (d < bd) {
                bd = d;
                best = commands[k].name;
            }
        }
        fprintf(stderr, "casebus: unknown command '%s'%s%s%s; casebus --help lists them\n",
                argv[i], best ? " (did you mean '" : "", best ? best : "", best ? "'?)" : "");
        return 2;
    }
    /* --help anywhere after a command shows its help and does nothing else
     * (the commands with a help of their own answer it themselves). */
    bool own_help = commands[known].own_help;
    for (int k = i + 1; k < argc && !own_help; k++)
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            command_help(argv[i]);
            return 0;
        }
    if (strcmp(argv[i], "completion") == 0) /* needs no configuration */
        return completion(argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "openapi") == 0)
        return cli_openapi(argc - i - 1);
    cb_config_t *cfg = NULL;
    cb_error_t err;
    if (cb_config_load(&cfg, config ? config : default_config(), &err) != 0) {
        fprintf(stderr, "casebus: %s\n", err.message);
        return 2;
    }
    bool talks = commands[known].talks;
    if (strcmp(argv[i], "calendar") == 0) /* show works from files alone */
        talks = argc - i >= 2 && strcmp(argv[i + 1], "import") == 0;
    for (int k = i + 1; k < argc; k++) /* a command's own help asks no daemon */
        talks = talks && strcmp(argv[k], "--help") != 0 && strcmp(argv[k], "-h") != 0;
    if (talks && cb_curve_setup(cfg, "operators/operator", getenv("CASEBUS_KEY"), &err) != 0) {
        fprintf(stderr, "casebus: %s\n", err.message);
        cb_config_destroy(&cfg);
        return 2;
    }
    int rc = commands[known].run
                 ? commands[known].run(cfg, argc - i - 1, argv + i + 1)
                 : commands[known].named(cfg, argv[i], argc - i - 1, argv + i + 1);
    cb_config_destroy(&cfg);
    return rc;
}
