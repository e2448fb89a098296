/*
 * cli.h — the `casebus` command line's private header: subcommands that live
 * in files of their own.
 */
#ifndef CB_CLI_H
#define CB_CLI_H

#include "config.h"

/* casebus tail … (tail.c); returns the exit status. */
int cli_tail(const cb_config_t *cfg, int argc, char **argv);

#endif
