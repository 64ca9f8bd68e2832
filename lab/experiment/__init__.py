"""`lab experiment` and `lab report`: pull vs push under an error and a latency burst, written up.

run.py runs the phases against a running stack and measures what each backend saw;
queries.py is what it asks each backend; alerts.py matches the alerts that fired
with the notifications the sink received; result.py is the result and result.json,
written and read in one place; report.py draws the report from that file alone.
"""
