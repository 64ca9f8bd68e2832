"""`lab dashboards`: the lab's Grafana dashboards, generated with grafana-foundation-sdk.

Every dashboard opens on what is wrong now, then shows the four golden signals over time:

- panels.py: the panel builders (a time series or a stat on one datasource);
- pipelines.py: the datasources and each pipeline's queries (PromPipeline for the scrape and the
  OTLP push, the StatsD targets), with the words that say how each one's numbers are made;
- golden.py: one panel function per golden signal and pipeline, and /database/'s symptom and cause;
- now.py: the Now row, each signal now, colored at its alert's threshold (lab/rules.py reads them);
- slo.py: the SLO row, budget left and burn rate, from the recording rules;
- alerts.py: the alert list and the marks of each injected fault's changes;
- guide.py: the three-way dashboard's guide text;
- sdk.py: what the SDK has no builder for (a Graphite query, an annotation with a datasource query);
- build.py: variables, rows, the four dashboards, their JSON (`lab dashboards [--check]`).
"""
