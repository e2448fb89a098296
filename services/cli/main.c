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

#define WHSEC_MAX (6 + 45)

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
            "            [--rate N]                      deliver an organisation's events to a\n"
            "                                            webhook (signed with the secret), or\n"
            "                                            keep them for its platform to pull\n"
            "  unsubscribe ID                            remove a subscription\n"
            "  subscription rotate-secret ID [--secret S] [--overlap 24h]\n"
            "                                            a new signing secret; the old one\n"
            "                                            signs too for the overlap\n"
            "  subscriptions                             list subscriptions (JSON)\n"
            "  deadletters                               list dead letters (JSON)\n"
            "  redeliver DELIVERY_ID                     send a dead letter again\n"
            "  case ID [--json]                          one case's timeline across every daemon,\n"
            "                                            who is competent, transfers, time limits\n"
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
            "  status                                    each daemon's status (JSON)\n"
            "  tail [--from beginning|now|SEQ|TIME] [--json] [--exit-at-end] ...\n"
            "                                            every daemon's events as one stream\n"
            "                                            (casebus tail --help)\n"
            "  verify                                    check every daemon's log (hash chain,\n"
            "                                            sequence, time); report the first\n"
            "                                            broken record\n"
            "  due --from TIME (--working-days N | --hours N | --days N) [--calendar DIR]\n"
            "                                            when a time limit falls due, by the\n"
            "                                            holiday calendar (default deploy/calendar)\n"
            "\n"
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

/* Standard Webhooks: whsec_ + base64 of 24 random bytes. */
static int make_whsec(char out[WHSEC_MAX])
{
    unsigned char key[24];
    if (sodium_init() < 0) {
        fprintf(stderr, "casebus: libsodium failed to start\n");
        return -1;
    }
    randombytes_buf(key, sizeof(key));
    memcpy(out, "whsec_", 6);
    sodium_bin2base64(out + 6, WHSEC_MAX - 6, key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(key, sizeof(key));
    return 0;
}

/* casebus subscription rotate-secret ID [--secret S] [--overlap 24h]. */
static int subscription_cmd(const cb_config_t *cfg, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[0], "rotate-secret") != 0 || argv[1][0] == '-') {
        fprintf(stderr, "usage: casebus subscription rotate-secret ID [--secret whsec_…] "
                        "[--overlap 24h]\n"
                        "  a new secret (made when not given, shown once); the old one keeps "
                        "signing too for the overlap (default 24h)\n");
        return argc >= 1 && strcmp(argv[0], "--help") == 0 ? 0 : 2;
    }
    Casebus__V1__RotateSecret rs = CASEBUS__V1__ROTATE_SECRET__INIT;
    char made[WHSEC_MAX] = "";
    rs.subscription_id = argv[1];
    rs.overlap_seconds = 86400;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--secret") == 0 && i + 1 < argc) {
            rs.secret = argv[++i];
        } else if (strcmp(argv[i], "--overlap") == 0 && i + 1 < argc) {
            int64_t until;
            cb_error_t e;
            if (cb_time_parse_after(argv[++i], 0, &until, &e) != 0 || until < 0 ||
                until / 1000 > 30 * 86400) {
                fprintf(stderr, "casebus: --overlap wants a span such as 90m, 24h or 7d (at most "
                                "30d)\n");
                return 2;
            }
            rs.overlap_seconds = (uint32_t)(until / 1000);
        } else {
            fprintf(stderr, "casebus: subscription rotate-secret: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (rs.secret == NULL || *rs.secret == '\0') {
        if (make_whsec(made) != 0)
            return 1;
        rs.secret = made;
    }
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    req.request_id = "cli";
    req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_ROTATE_SECRET;
    req.rotate_secret = &rs;
    Casebus__V1__ControlReply *rep = cli_call(cfg, "notify", &req);
    if (rep == NULL)
        return 1;
    int rc = rep->ok ? 0 : 1;
    if (!rep->ok)
        fprintf(stderr, "casebus: rotate-secret refused (%s): %s\n", rep->error_field,
                rep->message);
    else
        printf("%s\n%s%s%s", rep->message, made[0] ? "secret " : "", made,
               made[0] ? "\n(shown this once)\n" : "");
    casebus__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

/* notify's subscriptions and dead letters. */
static int notify_cmd(const cb_config_t *cfg, const char *what, int argc, char **argv)
{
    Casebus__V1__ControlRequest req = CASEBUS__V1__CONTROL_REQUEST__INIT;
    Casebus__V1__Subscribe sub = CASEBUS__V1__SUBSCRIBE__INIT;
    Casebus__V1__Unsubscribe uns = CASEBUS__V1__UNSUBSCRIBE__INIT;
    Casebus__V1__ListSubscriptions ls = CASEBUS__V1__LIST_SUBSCRIPTIONS__INIT;
    Casebus__V1__ListDeadLetters ld = CASEBUS__V1__LIST_DEAD_LETTERS__INIT;
    Casebus__V1__Redeliver rd = CASEBUS__V1__REDELIVER__INIT;
    char *types[32], events[1024] = "", made_secret[WHSEC_MAX] = "";
    req.request_id = "cli";
    if (strcmp(what, "subscribe") == 0) {
        for (int i = 0; i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "--org") == 0)
                sub.org_id = argv[i + 1];
            else if (strcmp(argv[i], "--url") == 0)
                sub.url = argv[i + 1];
            else if (strcmp(argv[i], "--secret") == 0)
                sub.secret = argv[i + 1];
            else if (strcmp(argv[i], "--events") == 0)
                snprintf(events, sizeof(events), "%s", argv[i + 1]);
            else if (strcmp(argv[i], "--channel") == 0)
                sub.channel = argv[i + 1];
            else if (strcmp(argv[i], "--rate") == 0)
                sub.rate_per_second = (uint32_t)strtoul(argv[i + 1], NULL, 10);
            else {
                usage(stderr);
                return 2;
            }
        }
        bool zmq = sub.channel && strcmp(sub.channel, "zmq") == 0;
        if (argc % 2 != 0 || sub.org_id == NULL || (sub.url == NULL && !zmq)) {
            fprintf(stderr, "casebus: subscribe needs --org and --url (or --channel zmq)\n");
            return 2;
        }
        if (sub.secret == NULL || *sub.secret == '\0') {
            if (make_whsec(made_secret) != 0)
                return 1;
            sub.secret = made_secret;
        }
        if (sub.url == NULL)
            sub.url = "";
        char *save = NULL;
        for (char *t = strtok_r(events, ",", &save); t && sub.n_event_types < 32;
             t = strtok_r(NULL, ",", &save))
            types[sub.n_event_types++] = t;
        sub.event_types = types;
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_SUBSCRIBE;
        req.subscribe = &sub;
    } else if (strcmp(what, "unsubscribe") == 0 || strcmp(what, "redeliver") == 0) {
        if (argc != 1) {
            usage(stderr);
            return 2;
        }
        if (what[0] == 'u') {
            uns.subscription_id = argv[0];
            req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_UNSUBSCRIBE;
            req.unsubscribe = &uns;
        } else {
            rd.delivery_id = argv[0];
            req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_REDELIVER;
            req.redeliver = &rd;
        }
    } else if (strcmp(what, "subscriptions") == 0) {
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_SUBSCRIPTIONS;
        req.list_subscriptions = &ls;
    } else {
        req.kind_case = CASEBUS__V1__CONTROL_REQUEST__KIND_LIST_DEAD_LETTERS;
        req.list_dead_letters = &ld;
    }
    Casebus__V1__ControlReply *rep =
        cli_call(cfg, "notify", &req);
    if (rep == NULL)
        return 1;
    int rc = rep->ok ? 0 : 1;
    if (!rep->ok)
        fprintf(stderr, "casebus: %s refused (%s): %s\n", what, rep->error_field, rep->message);
    else if (rep->status_json && *rep->status_json)
        printf("%s\n", rep->status_json);
    else
        printf("%s\n", rep->message);
    if (rep->ok && made_secret[0])
        printf("secret %s\n(shown this once: give it to the platform; it verifies the "
               "webhook-signature header with any Standard Webhooks library)\n",
               made_secret);
    casebus__v1__control_reply__free_unpacked(rep, NULL);
    return rc;
}

/* casebus verify: every daemon's log, opened read-only beside the running
 * daemon. Exit 1 when any chain is broken, 2 when a log cannot be read. */
static int verify(const cb_config_t *cfg)
{
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

static const char *const commands[] = {
    "org",   "catalog", "calendar", "status", "subscribe", "unsubscribe", "subscriptions",
    "deadletters", "redeliver", "subscription", "token", "report", "case", "submit", "tail",
    "verify", "due", "keys", NULL};

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
    while (commands[known] && strcmp(commands[known], argv[i]) != 0)
        known++;
    if (commands[known] == NULL) {
        const char *best = NULL;
        size_t bd = 3;
        for (size_t k = 0; commands[k]; k++) {
            size_t d = distance(argv[i], commands[k]);
            if (d < bd) {
                bd = d;
                best = commands[k];
            }
        }
        fprintf(stderr, "casebus: unknown command '%s'%s%s%s; casebus --help lists them\n",
                argv[i], best ? " (did you mean '" : "", best ? best : "", best ? "'?)" : "");
        return 2;
    }
    /* --help anywhere after a command shows its help and does nothing else
     * (the commands with a help of their own answer it themselves). */
    bool own_help = strcmp(argv[i], "tail") == 0 || strcmp(argv[i], "calendar") == 0 ||
                    strcmp(argv[i], "keys") == 0 || strcmp(argv[i], "subscription") == 0;
    for (int k = i + 1; k < argc && !own_help; k++)
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            command_help(argv[i]);
            return 0;
        }
    cb_config_t *cfg = NULL;
    cb_error_t err;
    if (cb_config_load(&cfg, config ? config : default_config(), &err) != 0) {
        fprintf(stderr, "casebus: %s\n", err.message);
        return 2;
    }
    if (strcmp(argv[i], "keys") == 0) { /* before the keys it makes are needed */
        int rc = cli_keys(cfg, argc - i - 1, argv + i + 1);
        cb_config_destroy(&cfg);
        return rc;
    }
    /* The operator's CURVE key pair when the deployment has keys, for the
     * commands that talk to a daemon over ZeroMQ. */
    static const char *const zmq_cmds[] = {"org", "catalog", "calendar", "status", "subscribe",
                                           "unsubscribe", "subscriptions", "deadletters",
                                           "redeliver", "token", "tail", "subscription"};
    bool talks = false;
    for (size_t k = 0; k < sizeof(zmq_cmds) / sizeof(zmq_cmds[0]); k++)
        talks |= strcmp(argv[i], zmq_cmds[k]) == 0;
    if (strcmp(argv[i], "calendar") == 0) /* show works from files alone */
        talks = argc - i >= 2 && strcmp(argv[i + 1], "import") == 0;
    if (talks && cb_curve_setup(cfg, "operators/operator", getenv("CASEBUS_KEY"), &err) != 0) {
        fprintf(stderr, "casebus: %s\n", err.message);
        cb_config_destroy(&cfg);
        return 2;
    }
    int rc;
    if (argc - i >= 2 && strcmp(argv[i], "org") == 0 && strcmp(argv[i + 1], "import") == 0)
        rc = import(cfg, false, argc - i - 2, argv + i + 2);
    else if (argc - i >= 2 && strcmp(argv[i], "catalog") == 0 &&
             strcmp(argv[i + 1], "import") == 0)
        rc = import(cfg, true, argc - i - 2, argv + i + 2);
    else if (strcmp(argv[i], "calendar") == 0)
        rc = cli_calendar(cfg, argc - i - 1, argv + i + 1);
    else if (strcmp(argv[i], "status") == 0)
        rc = cli_status(cfg);
    else if (strcmp(argv[i], "subscribe") == 0 || strcmp(argv[i], "unsubscribe") == 0 ||
             strcmp(argv[i], "subscriptions") == 0 || strcmp(argv[i], "deadletters") == 0 ||
             strcmp(argv[i], "redeliver") == 0)
        rc = notify_cmd(cfg, argv[i], argc - i - 1, argv + i + 1);
    else if (strcmp(argv[i], "subscription") == 0)
        rc = subscription_cmd(cfg, argc - i - 1, argv + i + 1);
    else if (strcmp(argv[i], "token") == 0)
        rc = cli_token(cfg, argc - i - 1, argv + i + 1);
    else if (strcmp(argv[i], "report") == 0)
        rc = cli_report(cfg, argc - i - 1, argv + i + 1);
    else if (strcmp(argv[i], "case") == 0)
        rc = cli_case(cfg, argc - i - 1, argv + i + 1);
    else if (strcmp(argv[i], "submit") == 0)
        rc = cli_submit(cfg, argc - i - 1, argv + i + 1);
    else if (strcmp(argv[i], "tail") == 0)
        rc = cli_tail(cfg, argc - i - 1, argv + i + 1);
    else if (strcmp(argv[i], "verify") == 0)
        rc = verify(cfg);
    else if (strcmp(argv[i], "due") == 0)
        rc = cli_due(cfg, argc - i - 1, argv + i + 1);
    else {
        usage(stderr);
        rc = 2;
    }
    cb_config_destroy(&cfg);
    return rc;
}
