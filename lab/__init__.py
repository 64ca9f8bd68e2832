"""The lab's tooling around the service (app/): one subpackage per `lab` command over a shared floor.

    stack/ (native, deps, dotenv)  experiment/ (experiment, report)  bench/  scenarios/
    dashboards/  where/            fault_control.py (faults)  alerts.py (alerts)

The floor every command uses: settings.py (the stack's numbers, read once), queries.py
(each golden signal's query per backend), rules.py (the one reader of the rule files),
contract.py (what names a series), backends.py (HTTP clients), polling.py (waiting on
readings), traffic.py (known traffic, counted). __main__.py parses and dispatches.
"""
