"""`lab where NAME`: where a name of the contract is defined, who emits it, which dashboards' panels
show it, which rules and alerts read it, which tests prove it and which scenarios teach about it.

subjects.py knows every name (a metric, a StatsD name, an OTLP instrument, a golden signal);
chain.py finds each link where it is (the dashboards' JSON, the rule files, the code); cli.py prints.
"""
