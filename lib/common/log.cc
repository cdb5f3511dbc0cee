#include "log.hh"

RTE_LOG_REGISTER(msecgw_logtype_main, msecgw.main, INFO);
RTE_LOG_REGISTER(msecgw_logtype_control, msecgw.control, INFO);
RTE_LOG_REGISTER(msecgw_logtype_config, msecgw.config, INFO);
RTE_LOG_REGISTER(msecgw_logtype_cli, msecgw.cli, INFO);
RTE_LOG_REGISTER(msecgw_logtype_metrics, msecgw.metrics, INFO);
RTE_LOG_REGISTER(msecgw_logtype_telemetry, msecgw.telemetry, INFO);
RTE_LOG_REGISTER(msecgw_logtype_keys, msecgw.keys, INFO);
