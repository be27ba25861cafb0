/*
 * sealpost-server configuration: a file of "key = value" lines ('#' starts
 * a comment), then command-line flags of the same names (--key=value or
 * --key value) which win.  Every key, its default and its meaning is in
 * docs/operations.md and in `sealpost-server --help`.
 */
#ifndef SP_SERVER_CONFIG_H
#define SP_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define SP_CONFIG_DOMAINS_MAX 16

struct sp_server_config {
	char listen[64];            /* address to bind, default 127.0.0.1 */
	int port;                   /* default 8443 */
	char data_dir[1024];        /* store and server secret */
	char tls_cert[1024];        /* PEM; empty = plain ws (tests only) */
	char tls_key[1024];
	char domains[SP_CONFIG_DOMAINS_MAX][254];
	int ndomains;
	int open_registration;      /* 0: registration needs an invite */
	int log_client_ips;         /* 0: never store or log client IPs */
	int max_connections;        /* default 20000 */
	int login_fail_per_account; /* failures per minute, default 5 */
	int login_fail_per_ip;      /* failures per minute, default 20 */
	int deliver_per_minute;     /* DELIVER records per sender, default 600 */
	int submit_per_hour;        /* SUBMIT messages per account, 100 */
	int submit_max_rcpts;       /* recipients per SUBMIT, 100 */
	uint64_t quota_default;     /* bytes per new account, 0 = none */
	int kdf_min_ops;            /* weakest Argon2id cost accepted, 2 */
	int kdf_min_mem_kib;        /* 65536 */
	int session_days;           /* unused sessions expire, 90 */
	int register_per_hour;      /* REGISTER attempts per source, 5 */
	int prelogin_per_minute;    /* per source, 30 */
	int keys_per_minute;        /* KEYS_GET per source, 60 */
	uint64_t blob_max;          /* bytes, 64 MiB */
	int metrics_public;         /* 0: /metrics to loopback peers only */
	char rp_id[254];            /* FIDO2 relying party; "" = first domain */
	int security_events;        /* 1: events into accounts' logs (default) */
	int worker_threads;         /* thread pool for store calls, 32 */
	int no_sync;                /* benchmarks only: skip fsync */
	int verbose;
};

void sp_config_defaults(struct sp_server_config *c);
/* Reads a config file; error text (static or in errbuf) in *error_r. */
int sp_config_load(struct sp_server_config *c, const char *path,
    char *errbuf, size_t errlen);
/* Applies one "key=value" setting; 0 or -1 with a message in errbuf. */
int sp_config_set(struct sp_server_config *c, const char *key,
    const char *value, char *errbuf, size_t errlen);
/* 1 if address's domain is one we serve (case-insensitive). */
int sp_config_serves(const struct sp_server_config *c, const char *address);

#endif
