#pragma once
/// msecgw's rte_log types, one per control-plane module (DESIGN.md §5): `set log msecgw.cli debug`
/// on the CLI or EAL's `--log-level=msecgw.control:debug` changes one module's verbosity. Lines go
/// to stderr (main.cc opens the stream after rte_eal_init) prefixed "msecgw: ". Control core only:
/// never log from a worker lcore.

#include <rte_log.h>

extern int msecgw_logtype_main;      ///< msecgw.main: start, stop, signals, reloads
extern int msecgw_logtype_control;   ///< msecgw.control: SAs, IV blocks, lifetimes
extern int msecgw_logtype_config;    ///< msecgw.config: configuration changes
extern int msecgw_logtype_cli;       ///< msecgw.cli: CLI socket and prompt
extern int msecgw_logtype_metrics;   ///< msecgw.metrics: Prometheus exporter
extern int msecgw_logtype_telemetry; ///< msecgw.telemetry: /msecgw/ telemetry commands
extern int msecgw_logtype_keys;      ///< msecgw.keys: key server and group members (never key material)

/// MSECGW_LOG(INFO, control, "SA %s installed", name): one line, newline added.
#define MSECGW_LOG(level, module, fmt, ...) \
    rte_log(RTE_LOG_##level, msecgw_logtype_##module, "msecgw: " fmt "\n" __VA_OPT__(, ) __VA_ARGS__)
