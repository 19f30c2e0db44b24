"""Policy: the rule engine (`rules`), settings declared once (`settings`), the config file (`config`),
targets and verdicts (`compat`)."""
