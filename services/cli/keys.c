/*
 * keys.c — casebus keys init | gen | list: the CURVE key pairs of a deployment
 * (common/curve.h), in [curve] keys_dir or --dir.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "curve.h"

#define USAGE                                                                                  \
    "usage: casebus keys init [--dir DIR]          the four daemons' and the operator's key\n"  \
    "                                              pairs, those still missing\n"                \
    "       casebus keys gen GROUP/NAME [--dir DIR] [--force]\n"                               \
    "                                              a new key pair: GROUP is daemons,\n"         \
    "                                              operators, observers or platforms\n"         \
    "       casebus keys list [--dir DIR]          every key: group, name, public key\n"   \
    "example: casebus keys gen platforms/wy-lt\n"

static const char *const groups[] = {"daemons", "operators", "observers", "platforms"};

static int bad_usage(const char *why)
{
    if (why)
        fprintf(stderr, "casebus: keys: %s\n", why);
    fputs(USAGE, stderr);
    return 2;
}

static bool known_group(const char *g, size_t n)
{
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        if (strlen(groups[i]) == n && strncmp(groups[i], g, n) == 0)
            return true;
    return false;
}

static int gen(const char *dir, const char *group, const char *name, bool force, bool quiet_exists)
{
    cb_error_t err;
    int rc = cb_curve_keygen(dir, group, name, force, &err);
    if (rc == CB_ERR_EXISTS && quiet_exists)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "casebus: keys: %s\n", err.message);
        return 1;
    }
    char path[1200], pub[CB_Z85_KEY_LEN + 1];
    snprintf(path, sizeof(path), "%s/%s/%s.pub", dir, group, name);
    if (cb_curve_read(path, pub, NULL, &err) != 0) {
        fprintf(stderr, "casebus: keys: %s\n", err.message);
        return 1;
    }
    printf("%s/%s  %s  %s/%s/%s.key (secret, 0600)\n", group, name, pub, dir, group, name);
    return 0;
}

static bool print_key(void *ctx, const char *group, const char *name, const char *pub,
                      const cb_error_t *err)
{
    const char *dir = ctx;
    char id[300], file[1500];
    struct stat st;
    snprintf(id, sizeof(id), "%s/%s", group, name);
    snprintf(file, sizeof(file), "%s/%s/%s.key", dir, group, name);
    if (pub == NULL)
        printf("%-28s  (unreadable: %s)\n", id, err->message);
    else
        printf("%-28s  %s  %s\n", id, pub, stat(file, &st) == 0 ? "yes" : "no");
    return false;
}

static int list(const char *dir)
{
    printf("%-28s  %-40s  %s\n", "KEY", "PUBLIC", "SECRET HERE");
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        cb_curve_each(dir, groups[i], print_key, (void *)dir);
    return 0;
}

int cli_keys(const cb_config_t *cfg, int argc, char **argv)
{
    if (argc < 1 || cli_wants_help(argc, argv)) {
        fputs(USAGE, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *verb = argv[0], *dir = cb_config_get(cfg, "curve", "keys_dir", ""), *what = NULL;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--force") == 0)
            force = true;
        else if (argv[i][0] != '-' && what == NULL)
            what = argv[i];
        else
            return bad_usage(strcmp(argv[i], "--help") == 0 ? NULL : "bad option");
    }
    if (*dir == '\0')
        return bad_usage("no keys directory: give --dir, or set [curve] keys_dir");
    if (strcmp(verb, "list") == 0 && what == NULL)
        return list(dir);
    if (strcmp(verb, "init") == 0 && what == NULL) {
        static const char *const daemons[] = {"intake", "router", "deadline", "notify"};
        int rc = 0;
        for (size_t i = 0; i < 4; i++)
            rc |= gen(dir, "daemons", daemons[i], false, true);
        return rc | gen(dir, "operators", "operator", false, true);
    }
    if (strcmp(verb, "gen") == 0 && what) {
        const char *slash = strchr(what, '/');
        if (slash == NULL || !known_group(what, (size_t)(slash - what)))
            return bad_usage("want GROUP/NAME, GROUP one of daemons, operators, observers, "
                             "platforms");
        char group[32];
        snprintf(group, sizeof(group), "%.*s", (int)(slash - what), what);
        return gen(dir, group, slash + 1, force, false);
    }
    return bad_usage("unknown subcommand or missing GROUP/NAME");
}
